"""Guided filter (He, Sun, Tang; TPAMI 2013): edge-preserving smoothing of p steered by guide I.

Used after pixel-shuffle upsampling (radius 1, ε = 0.01 on [0,1]) to remove the faint
checkerboard that independent sub-image denoising can leave. Per-channel guidance.
"""

from __future__ import annotations

import cv2
import numpy as np


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)² window, the window shrunk at the borders (as He et al.'s code)."""
    k = (2 * r + 1, 2 * r + 1)
    ones = cv2.boxFilter(np.ones(x.shape[:2], np.float64), -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
    s = cv2.boxFilter(x, -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
    return s / (ones if x.ndim == 2 else ones[..., None])


def guided_filter(p: np.ndarray, guide: np.ndarray, radius: int = 1, eps: float = 0.01) -> np.ndarray:
    """Filter p (H×W or H×W×C) with guide of the same shape; returns float32."""
    p64 = np.asarray(p, np.float64)
    i64 = np.asarray(guide, np.float64)
    mean_i, mean_p = _box(i64, radius), _box(p64, radius)
    cov_ip = _box(i64 * p64, radius) - mean_i * mean_p
    var_i = _box(i64 * i64, radius) - mean_i**2
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return (_box(a, radius) * i64 + _box(b, radius)).astype(np.float32)
