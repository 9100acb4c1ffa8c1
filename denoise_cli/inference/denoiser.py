"""A trained model bound to a device and precision, applied to whole photos: channel adaptation (gray photos with a
colour model and the reverse), tiling, the optional self-ensemble and strength, and a check that the output is finite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DeviceError, ModelOutputError
from ..io import to_channels
from ..models.mwcnn import MULTIPLE
from ..models.mwcnn_folded import fold_wavelets
from .devices import (AUTO_TILE, DEFAULT_OVERLAP, PRECISIONS, activation_bytes_per_pixel, auto_tile, cpu_has_bf16,
                      free_gpu_bytes, pick_device, resolve_precision)
from .tiles import TileFn, blend_tiles
from .views import DIHEDRAL, ensemble_mean

__all__ = ["Denoiser", "pick_device"]


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


@dataclass
class Denoiser:
    """A model bound to a device and precision; call it on H×W×C float32 arrays in [0,1], or use :meth:`denoise`
    for decoded integer pixels."""

    model: nn.Module
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"  # fp32, fp16, bf16, or auto (devices.resolve_precision)
    tile: int | None = None  # None: automatic; 0: never tile
    overlap: int = DEFAULT_OVERLAP
    gray_model: nn.Module | None = None  # used for 1-channel images when given
    ensemble: bool = False  # average 8 passes over rotated/mirrored copies: slightly better, slower
    strength: float = 1.0  # share of the estimated noise removed: y − strength·(y − x̂)

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f"strength {self.strength:g}: expected a value from 0 to 1")
        self.precision = resolve_precision(self.precision, self.device)
        if self.precision not in PRECISIONS:
            raise DeviceError(f"unknown precision {self.precision!r}: use auto, fp32, fp16 or bf16")
        if self.device.type == "cpu" and (self.precision == "fp16" or self.precision == "bf16" and not cpu_has_bf16()):
            raise DeviceError(f"{self.precision} arithmetic needs a GPU or, for bf16, a CPU with bf16 units "
                              "(AVX512-BF16, AMX); use fp32")
        if self.tile is not None and self.tile < 0 or self.overlap < 0:
            raise ConfigError("tile and overlap must be ≥ 0")
        self.model = fold_wavelets(self.model.to(self.device).eval())  # the same function, faster
        self.channels = self.model.config.channels
        if self.gray_model is not None:
            self.gray_model = fold_wavelets(self.gray_model.to(self.device).eval())

    def __call__(self, pixels: np.ndarray, notices: list[str] | None = None) -> np.ndarray:
        """Denoise float32 H×W×C pixels in [0,1]; a gray image with a colour model (or the reverse) is adapted and
        noted. With ``strength`` below 1 only that share of the estimated noise y − x̂ is removed."""
        return self.denoise(np.asarray(pixels, np.float32), notices)

    def pick(self, photo) -> tuple["Denoiser", None]:
        """The model for a photo: this one (the interface a per-photo choice, inference.choice.ModelChoice, shares)."""
        return self, None

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

    def apply(self, src: np.ndarray, dst: np.ndarray, on_tile: Callable[[int, int], None] | None = None) -> None:
        """The network alone over float32 H×W×C ``src``, tile by tile, into ``dst`` (H×W×C'): no channel adaptation,
        views or strength. For a guided model, whose input carries more channels (the guides) than it denoises."""
        tile = self._tile_size(*src.shape[:2], self.model)
        blend_tiles(self._forward, src, dst, tile, _round_up(self.overlap, MULTIPLE), on_tile=on_tile)

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
        if not bool(torch.isfinite(y.sum())):  # one reduction: a NaN or infinity anywhere makes the sum one
            raise ModelOutputError("the network's output is not finite (NaN or infinity): the weights are corrupt, or "
                                   "this precision overflows; try --precision fp32 or other weights")
        return y.clamp_(0, 1).cpu().numpy().transpose(1, 2, 0)
