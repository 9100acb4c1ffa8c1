"""The generalized Anscombe transform for Poisson–Gaussian sensor noise (variance a·x + b) and its closed-form unbiased
inverse (Mäkitalo & Foi, IEEE TIP 2011 and 2013): after the transform the noise is close to Gaussian with unit
variance, so a denoiser for white Gaussian noise (BM3D) works on RAW planes; the classical RAW-domain baseline."""

from __future__ import annotations

import numpy as np


def forward(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """z = x/a with read noise σ² = b/a²: 2·sqrt(max(z + 3/8 + σ², 0)), noise of unit variance."""
    s2 = b / a**2
    return 2.0 * np.sqrt(np.maximum(x / a + 0.375 + s2, 0.0))


def inverse(d: np.ndarray, a: float, b: float) -> np.ndarray:
    """The closed-form approximation of the exact unbiased inverse of :func:`forward`, back on the x scale."""
    s2 = b / a**2
    d = np.maximum(np.asarray(d, np.float64), 1e-3)
    r = np.sqrt(1.5)
    z = 0.25 * d**2 + 0.25 * r / d - 11 / 8 / d**2 + 5 / 8 * r / d**3 - 0.125 - s2
    return np.maximum(z, 0.0) * a
