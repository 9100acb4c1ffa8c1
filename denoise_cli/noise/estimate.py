"""Estimate a :class:`CorrelatedNoise` model from noisy photos and an estimate of their clean content, no references.

The residual r = y − x̂ of an estimate that never saw the pixel (fit passes D-BSN's blind-spot mean) is the noise,
plus the estimate's own error. Where the photo is flat the error is small — there is nothing to blur — so the
statistics come from the flattest part of each photo (judged on x̂, which carries little noise, so the choice does
not pick pixels whose noise happened to be small):
σ per channel against intensity (and per Bayer site when the sites differ), then the cross-covariance of the
normalised residual r/σ(x̂) over ±``lags`` pixels, whose spectral square root is the model's filter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .correlated import CorrelatedNoise, kernel_from_covariance

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


@dataclass
class Measured:
    """What the estimator reads off (y, x̂) pairs: σ per site, channel and knot, and the normalised residual's
    cross-covariance over ±lags (unit variance at lag 0)."""

    sigma: np.ndarray  # (G, C, K), 0–1 scale
    cov: np.ndarray  # (C, C, 2L+1, 2L+1)

    def model(self) -> CorrelatedNoise:
        kernel = kernel_from_covariance(self.cov, self.cov.shape[-1])
        return CorrelatedNoise(torch.from_numpy(self.sigma), torch.from_numpy(kernel))


def measure(pairs: Iterable[tuple[np.ndarray, np.ndarray]], channels: int,
            cfg: NoiseFitConfig = NoiseFitConfig()) -> Measured:
    """σ(x̂) and the cross-covariance of (y − x̂)/σ(x̂) over the flattest ``cfg.flat_fraction`` of each image."""
    pairs = list(pairs)
    stats = NoiseStats(channels, cfg)
    masks = [flat_mask(x, cfg.flat_fraction) for _, x in pairs]
    for (y, x), m in zip(pairs, masks):
        stats.add_levels(y, x, m)
    table = stats.sigma()
    levels = CorrelatedNoise(torch.from_numpy(table), torch.eye(channels)[:, :, None, None])
    num = np.zeros((channels, channels, 2 * cfg.lags + 1, 2 * cfg.lags + 1))
    count = np.zeros((2 * cfg.lags + 1, 2 * cfg.lags + 1))
    for (y, x), m in zip(pairs, masks):
        sig = levels.sigma_at(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].float())[0]
        u = (y.astype(np.float64) - x) / np.maximum(sig.numpy().transpose(1, 2, 0).astype(np.float64), 1e-6)
        n, k = cross_covariance(u, m, cfg.lags)
        num += n
        count += k
    return Measured(table, _unit_diagonal(num / np.maximum(count, 1)))


def _unit_diagonal(cov: np.ndarray) -> np.ndarray:
    """Scale a cross-covariance so that every channel has unit variance at lag 0 (σ carries the level)."""
    mid = cov.shape[-1] // 2
    scale = np.sqrt(np.maximum([cov[i, i, mid, mid] for i in range(cov.shape[0])], 1e-12))
    return cov / (scale[:, None, None, None] * scale[None, :, None, None])


def estimate_noise(pairs: Iterable[tuple[np.ndarray, np.ndarray]], channels: int,
                   cfg: NoiseFitConfig = NoiseFitConfig()) -> CorrelatedNoise:
    """A CorrelatedNoise model read directly off (noisy y, estimate x̂) pairs of H×W×C float arrays in [0,1] (no
    correction for what x̂ left of the noise: right when x̂ is the clean image)."""
    return measure(pairs, channels, cfg).model()


def calibrated_noise(pairs: list[tuple[np.ndarray, np.ndarray]], channels: int, denoise: Callable[[np.ndarray], np.ndarray],
                     cfg: NoiseFitConfig = NoiseFitConfig(), *, rounds: int = 2, probes: int = 4,
                     seed: int = 0) -> CorrelatedNoise:
    """The noise model, corrected for what the denoiser that made x̂ leaves in.

    A blind-spot denoiser keeps part of spatially correlated noise (the low frequencies) in x̂, so y − x̂ reads the
    noise too weak and too fine-grained. The same denoiser is run on ``probes`` of its own outputs with noise drawn
    from the current model added: how much of that known noise its residual shows, per channel, intensity and spatial
    frequency, is the correction applied to the residual of the real photos. A few rounds reach a fixed point where
    the model's noise, passed through the denoiser, reads like the photos' residual. No clean image is involved."""
    observed = measure(pairs, channels, cfg)
    current = observed
    rng = torch.Generator().manual_seed(seed)
    picks = np.linspace(0, len(pairs) - 1, min(probes, len(pairs))).round().astype(int)
    for _ in range(rounds):
        model = current.model()
        injected, recovered = [], []
        for i in sorted(set(picks)):
            x = centre_crop(pairs[i][1], PROBE_SIDE)
            noise = model.sample(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].float(),
                                 generator=rng)[0].numpy().transpose(1, 2, 0)
            z = (np.round(np.clip(x + noise, 0, 1) * 255) / 255).astype(np.float32)
            injected.append((z, x))
            recovered.append((z, denoise(z)))
        current = _corrected(observed, measure(injected, channels, cfg), measure(recovered, channels, cfg))
    return current.model()


PROBE_SIDE = 512  # probes are centre crops: the correction needs texture and flat areas, not whole 24 MP photos


def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    """The central side×side part of an image (all of it when smaller), on even offsets (Bayer sites kept)."""
    h, w = image.shape[:2]
    y0, x0 = max(0, (h - side) // 4 * 2), max(0, (w - side) // 4 * 2)
    return image[y0 : y0 + side, x0 : x0 + side]


MAX_GAIN = 6.0  # a residual never stands for more than this many times its own variance


def _corrected(observed: Measured, injected: Measured, recovered: Measured) -> Measured:
    """observed × injected / recovered: the level per knot, the spectrum per channel and frequency."""
    sigma = observed.sigma * np.clip(injected.sigma / np.maximum(recovered.sigma, 1e-9), 1.0, np.sqrt(MAX_GAIN))
    spectra = [np.fft.fft2(np.fft.ifftshift(m.cov, axes=(-2, -1))) for m in (observed, injected, recovered)]
    obs, inj, rec = spectra
    c = obs.shape[0]
    gain = np.stack([np.clip(np.real(inj[a, a]) / np.maximum(np.real(rec[a, a]), 1e-9), 1.0 / MAX_GAIN, MAX_GAIN)
                     for a in range(c)])
    fixed = obs * np.sqrt(gain[:, None] * gain[None, :])
    cov = np.real(np.fft.fftshift(np.fft.ifft2(fixed), axes=(-2, -1)))
    return Measured(sigma, _unit_diagonal(cov))
