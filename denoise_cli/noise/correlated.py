"""A noise model for real sRGB photos: signal-dependent, cross-channel *and* spatially correlated Gaussian noise.

Camera noise in an sRGB file has passed demosaicking, colour processing, denoising and JPEG inside the camera: it is
far from white (PolyU: neighbouring pixels correlate at 0.7, R and G at 0.7). The model is

    n = σ_g(x) ⊙ (K ⊛ n₀),   n₀ ~ N(0, I),

with K a C×C×k×k colour-spatial filter whose output has unit variance per channel and the measured cross-covariance
(the square root of the cross power spectrum, frequency by frequency), and σ_g,c(x) a per-channel noise level that
depends on the intensity of that channel and on the pixel's Bayer site g (2·(i mod 2) + (j mod 2); one table when the
sites do not differ). It is estimated from noisy photos alone (``noise.estimate``) and sampled by ``distill``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class CorrelatedNoise(nn.Module):
    """σ table (groups × channels × knots over intensity 0–1) and a unit-variance colour-spatial filter."""

    def __init__(self, sigma: torch.Tensor, kernel: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("sigma", sigma.float())  # (G, C, K), on the 0–1 scale
        self.register_buffer("kernel", kernel.float())  # (C, C, k, k), torch conv2d layout (cross-correlation)

    @property
    def channels(self) -> int:
        return self.sigma.shape[1]

    @property
    def groups(self) -> int:
        return self.sigma.shape[0]

    def sigma_at(self, x: torch.Tensor) -> torch.Tensor:
        """σ for every pixel of x (N,C,H,W in [0,1]): linear interpolation of the table at each channel's own
        intensity, per Bayer site."""
        g, c, k = self.sigma.shape
        pos = x.clamp(0, 1) * (k - 1)
        lo = pos.floor().clamp(max=k - 2).long()
        frac = pos - lo
        out = torch.empty_like(x)
        for site in range(g):
            sl = (slice(None), slice(None), *_site(site, g))
            table = self.sigma[site]  # (C, K)
            idx = lo[sl]
            lo_v = torch.gather(table.expand(idx.shape[0], c, k), 2, idx.flatten(2)).view_as(idx)
            hi_v = torch.gather(table.expand(idx.shape[0], c, k), 2, (idx + 1).flatten(2)).view_as(idx)
            out[sl] = lo_v + frac[sl] * (hi_v - lo_v)
        return out

    def field(self, n: int, h: int, w: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Unit-variance correlated Gaussian noise (N,C,H,W) with the model's cross-covariance."""
        k = self.kernel.shape[-1]
        white = torch.randn(n, self.channels, h + k - 1, w + k - 1, device=self.kernel.device, generator=generator)
        return F.conv2d(white, self.kernel)

    def sample(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """A noise draw for the clean images x (N,C,H,W in [0,1]): σ(x) ⊙ (K ⊛ n₀)."""
        n, _, h, w = x.shape
        return self.sigma_at(x) * self.field(n, h, w, generator=generator)

    def correlations(self, lags: int = 8) -> dict[str, list]:
        """The model's own correlation structure, for the noise report: per channel the correlation with the
        neighbour `lag` pixels to the right / below (lag 0…lags), and between channels at the same pixel."""
        cov = kernel_covariance(self.kernel.cpu().double().numpy(), lags)  # (C, C, 2L+1, 2L+1)
        c, mid = self.channels, lags
        var = np.array([cov[i, i, mid, mid] for i in range(c)])
        return {
            "horizontal": [[float(cov[i, i, mid, mid + d] / var[i]) for d in range(lags + 1)] for i in range(c)],
            "vertical": [[float(cov[i, i, mid + d, mid] / var[i]) for d in range(lags + 1)] for i in range(c)],
            "channels": [[float(cov[i, j, mid, mid] / math.sqrt(var[i] * var[j])) for j in range(c)] for i in range(c)],
        }


def report_section(model: CorrelatedNoise, lags: int = 8) -> dict:
    """The model as the noise report shows it: σ (0–255) per Bayer site and channel at its knots, and its
    correlations."""
    k = model.sigma.shape[-1]
    names = [f"group{g}" for g in range(model.groups)] if model.groups > 1 else ["all"]
    return {"levels": [i / (k - 1) for i in range(k)],
            "sigma": {n: (model.sigma[g] * 255).tolist() for g, n in enumerate(names)},
            "correlations": model.correlations(lags)}


def _site(group: int, groups: int) -> tuple[slice, slice]:
    """Rows and columns of Bayer site ``group`` (all pixels when there is one group)."""
    if groups == 1:
        return slice(None), slice(None)
    return slice(group // 2, None, 2), slice(group % 2, None, 2)


def kernel_covariance(kernel: np.ndarray, lags: int) -> np.ndarray:
    """Cross-covariance (C, C, 2L+1, 2L+1) of the field a conv2d with ``kernel`` makes from white noise:
    cov[a, b, L+dy, L+dx] = E[f_a(p) f_b(p + d)]."""
    c, _, k, _ = kernel.shape
    size = k + 2 * lags
    cov = np.zeros((c, c, 2 * lags + 1, 2 * lags + 1))
    # f_a(p) = Σ_b Σ_q K[a,b,q] n_b(p+q)  ⇒  E[f_a(p) f_b(p+d)] = Σ_e Σ_q K[a,e,q] K[b,e,q−d]
    for a in range(c):
        for b in range(c):
            for e in range(c):
                pa = np.zeros((size, size))
                pa[lags : lags + k, lags : lags + k] = kernel[a, e]
                for dy in range(-lags, lags + 1):
                    for dx in range(-lags, lags + 1):
                        pb = np.zeros((size, size))
                        pb[lags + dy : lags + dy + k, lags + dx : lags + dx + k] = kernel[b, e]
                        cov[a, b, lags + dy, lags + dx] += float((pa * pb).sum())
    return cov


def kernel_from_covariance(cov: np.ndarray, size: int) -> np.ndarray:
    """A C×C×size×size conv2d kernel whose output from white noise has (approximately) the cross-covariance ``cov``
    (C, C, 2L+1, 2L+1; cov[a, b, L+d] = E[u_a(p) u_b(p+d)]): the Hermitian square root of the cross power spectrum at
    every frequency (negative eigenvalues, from estimation noise and the cut at ±L, set to 0), cut to ``size`` (odd)
    and scaled to unit variance per channel."""
    c, _, n_lag, _ = cov.shape
    lags = n_lag // 2
    grid = 1 << max(5, math.ceil(math.log2(4 * max(lags, size))))
    full = np.zeros((c, c, grid, grid))
    for dy in range(-lags, lags + 1):
        for dx in range(-lags, lags + 1):
            # channels swapped: a field h ∗ n has E[f_a(p) f_b(p+d)] = IFFT of (H Hᴴ)_ba
            full[:, :, dy % grid, dx % grid] = cov[:, :, lags + dy, lags + dx].T
    spec = np.fft.fft2(full).transpose(2, 3, 0, 1)  # (grid, grid, C, C); Hermitian per frequency up to rounding
    spec = 0.5 * (spec + np.conj(spec.swapaxes(-1, -2)))
    vals, vecs = np.linalg.eigh(spec)
    root = (vecs * np.sqrt(np.clip(vals, 0, None))[..., None, :]) @ np.conj(vecs.swapaxes(-1, -2))
    h = np.real(np.fft.ifft2(root.transpose(2, 3, 0, 1)))  # (C, C, grid, grid): h[a, b] at lag (dy, dx)
    half = size // 2
    kernel = np.zeros((c, c, size, size))
    for dy in range(-half, half + 1):
        for dx in range(-half, half + 1):
            # conv2d correlates: out(p) = Σ K[q] n(p+q); with K[q] = h(−q) the field is h ∗ n, whose spectrum is root
            kernel[:, :, half + dy, half + dx] = h[:, :, (-dy) % grid, (-dx) % grid]
    kernel /= np.sqrt((kernel**2).sum(axis=(1, 2, 3)))[:, None, None, None]
    return kernel


def white_kernel(channels: int) -> np.ndarray:
    """The 1×1 identity filter: independent, white noise."""
    return np.eye(channels)[:, :, None, None]


def save_noise(model: CorrelatedNoise, path, **meta: str) -> None:
    """Write the model as safetensors (σ table and filter) with its kind in the metadata."""
    from safetensors.torch import save_file

    save_file({"sigma": model.sigma.contiguous().cpu(), "kernel": model.kernel.contiguous().cpu()}, str(path),
              metadata={"kind": "correlated", **meta})


def load_noise(path) -> CorrelatedNoise:
    """Read a model written by :func:`save_noise`."""
    from safetensors.torch import load_file

    t = load_file(str(path))
    return CorrelatedNoise(t["sigma"], t["kernel"])
