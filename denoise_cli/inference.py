"""Run a denoiser on an image: device choice, precision, tiling with overlap and blending.

Tiles sit on a grid aligned to the model's multiple (8 for a 3-level wavelet net), each read
with ``overlap`` pixels of context on every side. Outputs are blended across a narrow band
(overlap/4) next to each tile's own pixels; the rest of the context is only context, so every
pixel that counts has ≥ ¾·overlap of real neighbourhood (the small MWCNN sees ±55 px), seams
vanish and tiled output matches untiled to float precision.

Tiles are processed row by row and each finished band of rows is written straight into the output array in the
photo's own integer type, so memory is the decoded input, the output and one row of tiles — not several float copies
of a large photo.

Automatic tiling bounds memory. On the CPU that means tiles above 1 MP (peak RSS stays under 2 GiB
at 24 MP). On a CUDA GPU the whole image runs at once whenever its estimated activations fit in half
the free GPU memory: cutting and blending tiles on the host cost 3× the time there
(benchmarks/results/tiling-h200.md); a larger image gets the largest tiles that fit, and an
out-of-memory error on an automatic whole-image run falls back to tiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from .errors import DeviceError, ModelOutputError
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


TileFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Denoiser:
    """A model bound to a device and precision; call it on H×W×C float32 arrays in [0,1], or use :meth:`denoise`
    for decoded integer pixels."""

    model: nn.Module
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"
    tile: int | None = None  # None: automatic; 0: never tile
    overlap: int = DEFAULT_OVERLAP
    gray_model: nn.Module | None = None  # used for 1-channel images when given
    ensemble: bool = False  # average 8 passes over rotated/mirrored copies: slightly better, slower
    strength: float = 1.0  # share of the estimated noise removed: y − strength·(y − x̂)

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength {self.strength:g}: expected a value from 0 to 1")
        if self.precision not in PRECISIONS:
            raise DeviceError(f"unknown precision {self.precision!r}: use fp32, fp16 or bf16")
        if self.precision != "fp32" and self.device.type == "cpu":
            raise DeviceError(f"--precision {self.precision} needs a GPU; use fp32 on the CPU")
        if self.tile is not None and self.tile < 0 or self.overlap < 0:
            raise ValueError("tile and overlap must be ≥ 0")
        self.model = self.model.to(self.device).eval()
        self.channels = self.model.config.channels
        if self.gray_model is not None:
            self.gray_model = self.gray_model.to(self.device).eval()

    def __call__(self, pixels: np.ndarray, notices: list[str] | None = None) -> np.ndarray:
        """Denoise float32 H×W×C pixels in [0,1]; a gray image with a colour model (or the reverse) is adapted and
        noted. With ``strength`` below 1 only that share of the estimated noise y − x̂ is removed."""
        return self.denoise(np.asarray(pixels, np.float32), notices)

    def denoise(self, pixels: np.ndarray, notices: list[str] | None = None,
                on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Denoise H×W×C pixels given as float32 in [0,1], uint8 or uint16; the result has the input's type.
        ``on_tile(done, total)`` is called after each network pass (progress for large photos)."""
        h, w, c = pixels.shape
        model, fn = self._tile_fn(c, notices)
        tile = self._tile_size(h, w, model)
        out = np.empty_like(pixels)
        overlap = _round_up(self.overlap, MULTIPLE)
        passes = len(DIHEDRAL) if self.ensemble else 1
        try:
            blend_tiles(fn, pixels, out, tile, overlap, strength=self.strength, on_tile=on_tile, passes=passes)
        except torch.cuda.OutOfMemoryError:
            if self.tile is not None or tile is not None:  # the user chose the size, or tiles were already used
                raise
            torch.cuda.empty_cache()  # the estimate was wrong for this device: fall back to safe tiles
            blend_tiles(fn, pixels, out, AUTO_TILE, overlap, strength=self.strength, on_tile=on_tile, passes=passes)
        return out

    def _tile_fn(self, channels: int, notices: list[str] | None) -> tuple[nn.Module, TileFn]:
        """The model for an image of ``channels`` channels and the function one tile goes through: the network,
        adapted to the image's channels, averaged over the 8 views with ``ensemble``."""
        if channels == 1 and self.gray_model is not None:
            model, fn = self.gray_model, lambda x: self._forward(x, self.gray_model)
        elif channels == self.channels:
            model, fn = self.model, lambda x: self._forward(x, self.model)
        elif self.channels == 3:  # gray image, colour model: replicate, denoise, back to gray
            if notices is not None:
                notices.append("gray image denoised with a color model (channels replicated)")
            model, fn = self.model, lambda x: self._forward(to_channels(x, 3)).mean(axis=2, keepdims=True)
        else:
            if notices is not None:
                notices.append("color image denoised channel by channel with a gray model")
            model = self.model
            fn = lambda x: np.concatenate([self._forward(x[..., i : i + 1]) for i in range(x.shape[2])], axis=2)  # noqa: E731
        if not self.ensemble:
            return model, fn
        return model, lambda x: ensemble_mean(fn, x)

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
        y = y[0].float()
        if not bool(torch.isfinite(y).all()):
            raise ModelOutputError("the network's output is not finite (NaN or infinity): the weights are corrupt, or "
                                   "this precision overflows; try --precision fp32 or other weights")
        return y.clamp_(0, 1).cpu().numpy().transpose(1, 2, 0)


def ensemble_mean(fn: TileFn, x: np.ndarray) -> np.ndarray:
    """The mean of ``fn`` over the 8 turned/mirrored views of x, each turned back (a network is not exactly
    equivariant, so its errors partly average out)."""
    total = np.zeros(x.shape, np.float32)
    for k, flip in DIHEDRAL:
        total += undo_dihedral(fn(np.ascontiguousarray(dihedral(x, k, flip))), k, flip)
    return total / len(DIHEDRAL)


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


def count_tiles(h: int, w: int, tile: int | None) -> int:
    """How many network passes :func:`blend_tiles` makes for an h×w image (one without tiles)."""
    if tile is None or (h <= tile and w <= tile):
        return 1
    return -(-h // tile) * -(-w // tile)


def _store(dst: np.ndarray, rows: slice, values: np.ndarray) -> None:
    """Write float results in [0,1] into dst's rows in dst's type (rounded for integers)."""
    if dst.dtype.kind == "f":
        dst[rows] = values
        return
    top = np.iinfo(dst.dtype).max
    np.clip(values, 0.0, 1.0, out=values)
    values *= top
    np.round(values, out=values)
    dst[rows] = values


def _floats(src: np.ndarray) -> np.ndarray:
    """A block of source pixels as float32 in [0,1] (always a new array)."""
    if src.dtype.kind == "f":
        return src.astype(np.float32, copy=True)
    return src.astype(np.float32) / np.float32(np.iinfo(src.dtype).max)


def blend_tiles(fn: TileFn, src: np.ndarray, dst: np.ndarray, tile: int | None, overlap: int, *,
                strength: float = 1.0, on_tile: Callable[[int, int], None] | None = None, passes: int = 1) -> None:
    """Apply ``fn`` (float32 tile in [0,1] → same shape) to src tile by tile with ``overlap`` context, blend, and write
    the result into dst (same shape; float32, uint8 or uint16) one finished band of rows at a time. ``tile`` None runs
    the whole image at once. ``strength`` < 1 keeps that share of the estimate: y − strength·(y − x̂)."""
    h, w, _ = src.shape
    total = count_tiles(h, w, tile) * passes
    if tile is None or (h <= tile and w <= tile):
        res = fn(_floats(src))
        if strength != 1.0:
            _soften(res, src, strength)
        _store(dst, slice(0, h), res)
        if on_tile:
            on_tile(passes, total)
        return
    band = min(max(1, overlap // 4), overlap)  # rows of blending on each side of a tile's core
    carry_acc = carry_wt = None
    done = 0
    for y0 in range(0, h, tile):
        lo, hi = max(0, y0 - band), min(h, y0 + tile + band)
        acc = np.zeros((hi - lo, w, dst.shape[2]), np.float32)
        wt = np.zeros((hi - lo, w, 1), np.float32)
        if carry_acc is not None:
            acc[: len(carry_acc)] = carry_acc
            wt[: len(carry_wt)] = carry_wt
        ya, yb = max(0, y0 - overlap), min(h, y0 + tile + overlap)
        wy = _ramp(yb - ya, y0 - ya, yb - min(h, y0 + tile), overlap)[lo - ya : hi - ya]
        for x0 in range(0, w, tile):
            xa, xb = max(0, x0 - overlap), min(w, x0 + tile + overlap)
            res = fn(_floats(src[ya:yb, xa:xb]))[lo - ya : hi - ya]
            wx = _ramp(xb - xa, x0 - xa, xb - min(w, x0 + tile), overlap)
            weight = (wy[:, None] * wx[None, :])[..., None]
            res *= weight
            acc[:, xa:xb] += res
            wt[:, xa:xb] += weight
            done += passes
            if on_tile:
                on_tile(done, total)
        final = (y0 + tile - band if y0 + tile < h else hi) - lo  # rows no later tile row writes to
        out = acc[:final]
        out /= wt[:final]
        if strength != 1.0:
            _soften(out, src[lo : lo + final], strength)
        _store(dst, slice(lo, lo + final), out)
        carry_acc, carry_wt = acc[final:].copy(), wt[final:].copy()


def _soften(estimate: np.ndarray, src: np.ndarray, strength: float) -> None:
    """estimate ← y − strength·(y − estimate), in place, for the source pixels y of the same rows."""
    y = _floats(src)
    estimate -= y
    estimate *= strength
    estimate += y


def tiled(fn: TileFn, pixels: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Apply ``fn`` tile by tile with ``overlap`` context to float32 pixels, blending into one new array."""
    out = np.empty(pixels.shape, np.float32)
    blend_tiles(fn, pixels, out, tile, overlap)
    return out
