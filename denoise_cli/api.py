"""The library entry points: load a denoiser once, apply it to arrays (no CLI needed)."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from .registry.checkpoint import load_model
from .inference.denoiser import Denoiser
from .inference.devices import DEFAULT_OVERLAP, pick_device
from .registry.weights import resolve, resolve_default_gray


def load_denoiser(weights: str | os.PathLike | None = None, *, device: str = "auto",
                  precision: str = "auto", tile: int | None = None, overlap: int = DEFAULT_OVERLAP,
                  ensemble: bool = False, strength: float = 1.0) -> Denoiser:
    """A ready :class:`Denoiser`: weights by registry name, path or hf:// address.

    None means the registry defaults: the colour default, plus the gray default for gray images
    (a colour model sees replicated gray as perfectly channel-correlated noise and keeps it).
    ``ensemble`` averages 8 passes over rotated/mirrored copies: a little better, 8 passes' time.
    ``strength`` (0–1) removes only that share of the estimated noise: y − strength·(y − x̂). ``precision`` "auto" is
    bf16 on CPUs with bf16 units and fp32 elsewhere (inference.devices.resolve_precision)."""
    gray = None
    if weights is None and (gray_path := resolve_default_gray()) is not None:
        gray = load_model(gray_path)
    return Denoiser(load_model(resolve(weights)), pick_device(device), precision, tile, overlap, gray_model=gray,
                    ensemble=ensemble, strength=strength)


@lru_cache(maxsize=2)
def _cached(weights: str | None, device: str, ensemble: bool) -> Denoiser:
    return load_denoiser(weights, device=device, ensemble=ensemble)


def denoise_image(image: np.ndarray, weights: str | os.PathLike | None = None, *, device: str = "auto",
                  ensemble: bool = False) -> np.ndarray:
    """Denoise one image array: uint8/uint16 or float in [0,1], H×W or H×W×C (C = 1 or 3).

    Returns the same dtype and shape. The denoiser is cached across calls.
    """
    arr = np.asarray(image)
    if arr.dtype == np.uint8 or arr.dtype == np.uint16:
        top = np.iinfo(arr.dtype).max
        pixels = arr.astype(np.float32) / top
    else:
        top = None
        pixels = arr.astype(np.float32)
    shaped = pixels[..., None] if pixels.ndim == 2 else pixels
    out = _cached(None if weights is None else str(weights), device, ensemble)(shaped).reshape(arr.shape)
    if top is None:
        return out.astype(arr.dtype, copy=False)
    return np.round(np.clip(out, 0, 1) * top).astype(arr.dtype)
