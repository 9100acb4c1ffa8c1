"""PSNR and SSIM on the 0–255 scale, over all channels, no border crop (SSIM's own window
border aside, as in skimage), matching the numbers image-restoration papers report."""

from __future__ import annotations

import cv2
import numpy as np

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # 11×11 Gaussian window, as skimage's gaussian_weights=True with truncate 3.5


def to_255(x: np.ndarray) -> np.ndarray:
    """[0,1] floats → 0–255 floats rounded to 8-bit levels, as a saved image would be."""
    return np.round(np.clip(np.asarray(x, np.float64), 0, 1) * 255)


def psnr(clean: np.ndarray, test: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB, averaged over all pixels and channels."""
    mse = np.mean((np.asarray(clean, np.float64) - np.asarray(test, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def ssim(clean: np.ndarray, test: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004; Gaussian σ=1.5 window, K1=0.01, K2=0.03); color: channel mean."""
    a = np.asarray(clean, np.float64)
    b = np.asarray(test, np.float64)
    if a.ndim == 3:
        return float(np.mean([ssim(a[..., i], b[..., i], data_range) for i in range(a.shape[2])]))
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    k = 2 * SSIM_RADIUS + 1

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (k, k), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    r = SSIM_RADIUS
    return float(s[r:-r, r:-r].mean())


def estimate_sigma(noisy: np.ndarray) -> float:
    """Noise σ (0–255) from the median absolute Haar HH coefficient (Donoho's MAD rule)."""
    x = np.asarray(noisy, np.float64)
    x = x[: x.shape[0] // 2 * 2, : x.shape[1] // 2 * 2]
    hh = (x[0::2, 0::2] - x[1::2, 0::2] - x[0::2, 1::2] + x[1::2, 1::2]) / 2
    return float(np.median(np.abs(hh)) / 0.6745 * 255)
