"""Run a denoiser on an image: device choice, precision, tiling with overlap and blending.

Tiles sit on a grid aligned to the model's multiple (8 for a 3-level wavelet net), each read
with ``overlap`` pixels of context on every side. Outputs are blended across a narrow band
(overlap/4) next to each tile's own pixels; the rest of the context is only context, so every
pixel that counts has ≥ ¾·overlap of real neighbourhood (the small MWCNN sees ±55 px), seams
vanish and tiled output matches untiled to float precision.

Automatic tiling bounds memory. On the CPU that means tiles above 1 MP (peak RSS stays under 2 GiB
at 24 MP). On a CUDA GPU the whole image runs at once whenever its estimated activations fit in half
the free GPU memory: cutting and blending tiles on the host cost 3× the time there
(benchmarks/results/tiling-h200.md); a larger image gets the largest tiles that fit, and an
out-of-memory error on an automatic whole-image run falls back to tiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .io import to_channels
from .models.mwcnn import MULTIPLE

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
AUTO_TILE_PIXELS = 1024 * 1024  # CPU/MPS: above this many pixels, tile automatically
AUTO_TILE = 1024
DEFAULT_OVERLAP = 96
GPU_MEMORY_SHARE = 0.5  # CUDA: an automatic run may use this share of the free memory


def activation_bytes_per_pixel(model: nn.Module, precision: str) -> int:
    """A generous estimate of inference memory per image pixel: 2 values per first-level channel.
    Measured peaks: small MWCNN 204 B/px in fp32 and 108 in fp16 on CUDA (estimate 256 and 128),
    full MWCNN 1 050 B/px in fp32 on the CPU (estimate 1 280)."""
    return 2 * model.config.widths[0] * (4 if precision == "fp32" else 2)


def free_gpu_bytes(device: torch.device) -> int:
    """Memory a new allocation can use: free on the device plus what PyTorch holds cached but unused."""
    free = torch.cuda.mem_get_info(device)[0]
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def auto_tile(h: int, w: int, device_type: str, free_bytes: int | None = None, bytes_per_pixel: int = 256,
              overlap: int = DEFAULT_OVERLAP) -> int | None:
    """The automatic tile side for an h×w image (None: whole image). CUDA: whole if it fits in
    GPU_MEMORY_SHARE of ``free_bytes``, else the largest tile that does (never under AUTO_TILE);
    elsewhere AUTO_TILE above AUTO_TILE_PIXELS."""
    if device_type != "cuda" or free_bytes is None:
        return AUTO_TILE if h * w > AUTO_TILE_PIXELS else None
    budget = GPU_MEMORY_SHARE * free_bytes / bytes_per_pixel  # pixels that fit
    if h * w <= budget:
        return None
    side = int(budget**0.5) - 2 * overlap
    return max(AUTO_TILE, side // MULTIPLE * MULTIPLE)


class DeviceError(Exception):
    """A device or precision that this machine cannot provide."""


def pick_device(name: str = "auto") -> torch.device:
    """auto → CUDA, then MPS, then CPU; an explicit name must be available."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA GPU is available to this PyTorch build")
    if name == "mps" and not has_mps:
        raise DeviceError("--device mps: Apple MPS is not available here")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda or mps")
    return torch.device(name)


#: The self-ensemble's 8 views: (quarter turns, mirrored), the symmetries of the square.
DIHEDRAL = [(k, flip) for k in range(4) for flip in (False, True)]


def dihedral(x: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """x (H×W×C) turned k quarter turns counter-clockwise, then mirrored left–right when ``flip``."""
    y = np.rot90(x, k)
    return y[:, ::-1] if flip else y


def undo_dihedral(y: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """The inverse of :func:`dihedral` with the same ``k`` and ``flip``."""
    return np.rot90(y[:, ::-1] if flip else y, -k)


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


@dataclass
class Denoiser:
    """A model bound to a device and precision; call it on H×W×C float32 arrays in [0,1]."""

    model: nn.Module
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"
    tile: int | None = None  # None: automatic; 0: never tile
    overlap: int = DEFAULT_OVERLAP
    gray_model: nn.Module | None = None  # used for 1-channel images when given
    ensemble: bool = False  # average 8 passes over rotated/mirrored copies: slightly better, slower

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise DeviceError(f"unknown precision {self.precision!r}: use fp32, fp16 or bf16")
        if self.precision != "fp32" and self.device.type == "cpu":
            raise DeviceError(f"--precision {self.precision} needs a GPU; use fp32 on the CPU")
        self.model = self.model.to(self.device).eval()
        self.channels = self.model.config.channels
        if self.gray_model is not None:
            self.gray_model = self.gray_model.to(self.device).eval()

    def __call__(self, pixels: np.ndarray, notices: list[str] | None = None) -> np.ndarray:
        """Denoise; a gray image with a color model (or the reverse) is adapted and noted."""
        c = pixels.shape[2]
        if c == 1 and self.gray_model is not None:
            return self._run(pixels, self.gray_model)
        if c == self.channels:
            return self._run(pixels)
        if self.channels == 3:  # gray image, color model: replicate, denoise, back to gray
            if notices is not None:
                notices.append("gray image denoised with a color model (channels replicated)")
            return self._run(to_channels(pixels, 3)).mean(axis=2, keepdims=True)
        if notices is not None:
            notices.append("color image denoised channel by channel with a gray model")
        return np.concatenate([self._run(pixels[..., i : i + 1]) for i in range(c)], axis=2)

    def _tile_size(self, h: int, w: int, model: nn.Module) -> int | None:
        if self.tile == 0:
            return None
        if self.tile is None:
            free = free_gpu_bytes(self.device) if self.device.type == "cuda" else None
            return auto_tile(h, w, self.device.type, free, activation_bytes_per_pixel(model, self.precision),
                             _round_up(self.overlap, MULTIPLE))
        return max(MULTIPLE, _round_up(self.tile, MULTIPLE))

    @torch.inference_mode()
    def _forward(self, x: np.ndarray, model: nn.Module | None = None) -> np.ndarray:
        model = model or self.model
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(self.device)
        if self.precision == "fp32":
            y = model(t)
        else:
            with torch.autocast(self.device.type, dtype=PRECISIONS[self.precision]):
                y = model(t)
        return y[0].float().clamp_(0, 1).cpu().numpy().transpose(1, 2, 0)

    def _run(self, pixels: np.ndarray, model: nn.Module | None = None) -> np.ndarray:
        """One pass, or with ``ensemble`` the mean of the passes over the 8 turned/mirrored views (a network
        is not exactly equivariant, so its errors partly average out)."""
        if not self.ensemble:
            return self._run_once(pixels, model)
        # views stay numpy views: _forward copies each into a tensor anyway, and every pass's output is fresh,
        # so the first can hold the running sum
        views = (undo_dihedral(self._run_once(dihedral(pixels, k, flip), model), k, flip) for k, flip in DIHEDRAL)
        total = next(views)
        for out in views:
            total += out
        return total / len(DIHEDRAL)

    def _run_once(self, pixels: np.ndarray, model: nn.Module | None = None) -> np.ndarray:
        model = model or self.model
        h, w = pixels.shape[:2]
        tile = self._tile_size(h, w, model)
        if tile is None or (h <= tile and w <= tile):
            try:
                return self._forward(pixels, model)
            except torch.cuda.OutOfMemoryError:
                if self.tile is not None:  # the user chose whole images: say so rather than second-guess
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                tile = AUTO_TILE  # the estimate was wrong for this device: fall back to safe tiles
        return tiled(lambda x: self._forward(x, model), pixels, tile, _round_up(self.overlap, MULTIPLE))


def _ramp(n: int, lo_ctx: int, hi_ctx: int, overlap: int) -> np.ndarray:
    """1 on the tile's own pixels, falling linearly to 0 across a band of overlap/4 into the
    context on each side, 0 beyond it."""
    band = max(1, overlap // 4)
    fall = 1.0 - (np.arange(overlap) + 1) / (band + 1)
    fall = np.clip(fall, 0.0, 1.0).astype(np.float32)  # fall[k]: weight k+1 pixels out of the core
    r = np.ones(n, np.float32)
    if lo_ctx:
        r[:lo_ctx] = fall[:lo_ctx][::-1]
    if hi_ctx:
        r[n - hi_ctx :] = fall[:hi_ctx]
    return r


def tiled(fn, pixels: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Apply ``fn`` tile by tile with ``overlap`` context, blending into one output."""
    h, w, c = pixels.shape
    out = np.zeros((h, w, c), np.float32)
    weight = np.zeros((h, w, 1), np.float32)  # accumulators are updated in place: no full-size temporaries
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            ya, yb = max(0, y0 - overlap), min(h, y0 + tile + overlap)
            xa, xb = max(0, x0 - overlap), min(w, x0 + tile + overlap)
            res = fn(pixels[ya:yb, xa:xb])
            wy = _ramp(yb - ya, y0 - ya, yb - min(h, y0 + tile), overlap)
            wx = _ramp(xb - xa, x0 - xa, xb - min(w, x0 + tile), overlap)
            wt = (wy[:, None] * wx[None, :])[..., None]
            res *= wt
            out[ya:yb, xa:xb] += res
            weight[ya:yb, xa:xb] += wt
    out /= weight
    return out
