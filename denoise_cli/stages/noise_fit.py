"""Estimate a :class:`CorrelatedNoise` model from noisy photos and an estimate of their clean content, no references.

The residual r = y − x̂ of a good denoiser is the noise, plus the denoiser's own error. Where the photo is flat the
error is small — the denoiser has nothing to blur — so the statistics come from the flattest part of each photo
(judged on x̂, which carries little noise, so the choice does not pick pixels whose noise happened to be small):
σ per channel against intensity (and per Bayer site when the sites differ), then the cross-covariance of the
normalised residual r/σ(x̂) over ±``lags`` pixels, whose spectral square root is the model's filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..models.correlated_noise import CorrelatedNoise, kernel_from_covariance

KNOTS = 17  # σ table: intensities 0, 1/16, …, 1
LAGS = 7  # cross-covariance measured over ±7 pixels: the filter is 15×15
MIN_WEIGHT = 2000.0  # pixels a knot needs before its σ is trusted; thinner knots take their neighbours' value
SITE_SPREAD = 0.05  # Bayer sites whose σ differ less than this (relative) share one table


@dataclass
class NoiseFitConfig:
    knots: int = KNOTS
    lags: int = LAGS
    flat_fraction: float = 0.5  # share of each photo's pixels used: the flattest by x̂'s local gradient
    groups: int = 4  # Bayer sites estimated apart (merged again when they agree within SITE_SPREAD)


def flat_mask(x_hat: np.ndarray, fraction: float) -> np.ndarray:
    """The ``fraction`` of pixels where x̂ varies least (gradient energy over a 5×5 window), as a float mask."""
    if fraction >= 1:
        return np.ones(x_hat.shape[:2], np.float64)
    gray = x_hat.mean(axis=2).astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.boxFilter(gx * gx + gy * gy, -1, (5, 5))
    return (energy <= np.quantile(energy, fraction)).astype(np.float64)


def _site_map(h: int, w: int, groups: int) -> np.ndarray:
    if groups == 1:
        return np.zeros((h, w), np.int64)
    i, j = np.indices((h, w))
    return 2 * (i % 2) + (j % 2)


class NoiseStats:
    """Accumulates σ² per (site, channel, knot) and then the normalised residual's cross-covariance over photos."""

    def __init__(self, channels: int, cfg: NoiseFitConfig = NoiseFitConfig()) -> None:
        self.cfg, self.channels = cfg, channels
        shape = (cfg.groups, channels, cfg.knots)
        self.sq, self.wt = np.zeros(shape), np.zeros(shape)

    def add_levels(self, y: np.ndarray, x_hat: np.ndarray, mask: np.ndarray) -> None:
        """σ² per knot, each pixel shared between the two knots around its x̂ (linear weights)."""
        r2 = (y.astype(np.float64) - x_hat) ** 2
        k = self.cfg.knots
        pos = np.clip(x_hat, 0, 1) * (k - 1)
        lo = np.minimum(np.floor(pos).astype(np.int64), k - 2)
        frac = pos - lo
        sites = _site_map(*y.shape[:2], self.cfg.groups)
        for g in range(self.cfg.groups):
            sel = (sites == g) & (mask > 0)
            for c in range(self.channels):
                lo_c, f_c, r_c = lo[..., c][sel], frac[..., c][sel], r2[..., c][sel]
                for idx, w in ((lo_c, 1 - f_c), (lo_c + 1, f_c)):
                    self.sq[g, c] += np.bincount(idx, weights=w * r_c, minlength=k)
                    self.wt[g, c] += np.bincount(idx, weights=w, minlength=k)

    def sigma(self) -> np.ndarray:
        """(G, C, K) σ table; knots with too few pixels take the nearest trusted knot's value; sites merged to one
        table when they agree."""
        g_n, c_n, k = self.sq.shape
        merged_sq, merged_wt = self.sq.sum(0, keepdims=True), self.wt.sum(0, keepdims=True)
        table = _fill(np.sqrt(merged_sq / np.maximum(merged_wt, 1e-12)), merged_wt)
        if g_n == 1:
            return table
        per_site = _fill(np.sqrt(self.sq / np.maximum(self.wt, 1e-12)), self.wt / 4)
        spread = np.abs(per_site - table).max() / max(float(table.mean()), 1e-12)
        return per_site if spread > SITE_SPREAD else table


def _fill(table: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Knots below MIN_WEIGHT take the value of the nearest trusted knot of the same row (the flat ends of the
    intensity range); a row with none keeps its best-supported knot everywhere."""
    out = table.copy()
    for idx in np.ndindex(table.shape[:-1]):
        ok = weight[idx] >= MIN_WEIGHT
        if not ok.any():
            ok = weight[idx] >= weight[idx].max()
        good = np.flatnonzero(ok)
        out[idx] = np.interp(np.arange(table.shape[-1]), good, table[idx][good])
    return out


def cross_covariance(u: np.ndarray, mask: np.ndarray, lags: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums for E[u_a(p) u_b(p+d)] over pixel pairs both inside the mask, |d| ≤ lags: (numerator (C,C,2L+1,2L+1),
    pair counts (2L+1,2L+1)). Zero-padded FFTs, so nothing wraps around the image."""
    h, w, c = u.shape
    fh, fw = h + lags, w + lags
    mu = u * mask[..., None]
    spec = np.fft.rfft2(mu, s=(fh, fw), axes=(0, 1))
    m_spec = np.fft.rfft2(mask, s=(fh, fw))
    num = np.zeros((c, c, 2 * lags + 1, 2 * lags + 1))
    ys, xs = np.arange(-lags, lags + 1) % fh, np.arange(-lags, lags + 1) % fw
    for a in range(c):
        for b in range(c):
            corr = np.fft.irfft2(np.conj(spec[..., a]) * spec[..., b], s=(fh, fw))  # Σ_p u_a(p) u_b(p+d)
            num[a, b] = corr[np.ix_(ys, xs)]
    pairs = np.fft.irfft2(np.conj(m_spec) * m_spec, s=(fh, fw))[np.ix_(ys, xs)]
    return num, np.round(pairs)


def estimate_noise(pairs: Iterable[tuple[np.ndarray, np.ndarray]], channels: int,
                   cfg: NoiseFitConfig = NoiseFitConfig()) -> CorrelatedNoise:
    """A CorrelatedNoise model from (noisy y, estimate x̂) pairs of H×W×C float arrays in [0,1]. Two passes over the
    pairs (σ first, then the normalised residual's covariance), so ``pairs`` must be re-iterable (a list)."""
    pairs = list(pairs)
    stats = NoiseStats(channels, cfg)
    masks = [flat_mask(x, cfg.flat_fraction) for _, x in pairs]
    for (y, x), m in zip(pairs, masks):
        stats.add_levels(y, x, m)
    table = stats.sigma()
    model = CorrelatedNoise(torch.from_numpy(table), torch.eye(channels)[:, :, None, None])
    num = np.zeros((channels, channels, 2 * cfg.lags + 1, 2 * cfg.lags + 1))
    count = np.zeros((2 * cfg.lags + 1, 2 * cfg.lags + 1))
    for (y, x), m in zip(pairs, masks):
        sig = model.sigma_at(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].float())[0]
        u = (y.astype(np.float64) - x) / np.maximum(sig.numpy().transpose(1, 2, 0).astype(np.float64), 1e-6)
        n, k = cross_covariance(u, m, cfg.lags)
        num += n
        count += k
    cov = num / np.maximum(count, 1)
    mid = cfg.lags
    scale = np.sqrt(np.array([cov[i, i, mid, mid] for i in range(channels)]))
    cov /= scale[:, None, None, None] * scale[None, :, None, None]  # unit variance: σ(x̂) carries the level
    kernel = kernel_from_covariance(cov, 2 * cfg.lags + 1)
    return CorrelatedNoise(torch.from_numpy(table), torch.from_numpy(kernel))
