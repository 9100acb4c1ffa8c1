"""The noise report of a fit run: what the learned noise model says about the camera, as σ (0–255)
versus intensity per channel and Bayer group, in JSON and as a small plot.

Two readings of the same model. ``sigma`` reads CNNest on flat, noiseless gray inputs y = (x, x, x):
simple, but where a colour model has seen no data (real noise pulls the channels of y apart, and a
colour CNNest can read the noise level off that spread, so at zero spread it predicts too little).
``sigma_on_images`` averages Σn over the pixels of the fit's own noisy images, binned by the
stage-1 estimate x̂: the noise the model applies to those photos. Neither needs a clean image.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from .cnnest import NoiseModel

LEVELS = 21  # report intensities 0, 0.05, …, 1
MIN_PIXELS = 200  # fewer pixels than this in an intensity bin: no value there (null in the JSON)
CHUNK = 1 << 16  # pixels sent through CNNest at a time (its factor is C×C floats per pixel)


def group_map(h: int, w: int, groups: int) -> np.ndarray:
    """Noise-model group of every full-resolution pixel: 2·(i mod 2) + (j mod 2) for the 4 Bayer groups of
    real mode (what pd.bayer_groups gives each pixel-shuffled sub-image), 0 otherwise."""
    if groups == 1:
        return np.zeros((h, w), dtype=np.int64)
    i, j = np.indices((h, w))
    return 2 * (i % 2) + (j % 2)


@torch.no_grad()
def pixel_variance(noise: NoiseModel, pixels: np.ndarray, group: int, device: torch.device) -> np.ndarray:
    """Σn's diagonal (variances on [0,1]²) for (P, C) noisy pixel values, from one group's CNNest; CNNest is
    pixel-wise, so the pixels go through it as a one-column image, CHUNK at a time."""
    out = []
    for start in range(0, len(pixels), CHUNK):
        t = torch.from_numpy(np.ascontiguousarray(pixels[start:start + CHUNK].T))[:, :, None][None].float().to(device)
        L = noise(t, group)[0, :, 0]  # (P,C,C) lower-triangular: diag(L Lᵀ)_c = Σ_k L_ck²
        out.append((L**2).sum(-1).cpu().numpy())
    return np.concatenate(out, axis=0) if out else np.zeros((0, pixels.shape[1]))


class ImageSigma:
    """Accumulates Σn over (noisy y, stage-1 x̂) image pairs, binned per group, channel and intensity of x̂."""

    def __init__(self, noise: NoiseModel, device: torch.device, levels: int = LEVELS) -> None:
        self.noise, self.device, self.levels = noise, device, levels
        shape = (noise.groups, noise.channels, levels)
        self.sums, self.counts = np.zeros(shape), np.zeros(shape, dtype=np.int64)

    def add(self, y: np.ndarray, x_hat: np.ndarray) -> None:
        h, w, c = y.shape
        bins = np.clip(np.rint(x_hat * (self.levels - 1)), 0, self.levels - 1).astype(np.int64)
        gmap = group_map(h, w, self.noise.groups)
        for g in range(self.noise.groups):  # each group's CNNest on its own pixels only
            sel = gmap == g
            var, b = pixel_variance(self.noise, y[sel], g, self.device), bins[sel]  # (P, C) each
            for ch in range(c):
                self.sums[g, ch] += np.bincount(b[:, ch], weights=var[:, ch], minlength=self.levels)
                self.counts[g, ch] += np.bincount(b[:, ch], minlength=self.levels)

    def curves(self) -> list[list[list[float | None]]]:
        """σ (0–255) per group, channel and level: the root of the mean variance; None below MIN_PIXELS."""
        sigma = np.sqrt(self.sums / np.maximum(self.counts, 1)) * 255
        return [[[float(s) if n >= MIN_PIXELS else None for s, n in zip(ch_s, ch_n)]
                 for ch_s, ch_n in zip(g_s, g_n)] for g_s, g_n in zip(sigma, self.counts)]


def group_names(groups: int) -> list[str]:
    return [f"group{g}" for g in range(groups)] if groups > 1 else ["all"]


def build_report(noise: NoiseModel, device: torch.device, on_images: ImageSigma | None = None,
                 levels: int = LEVELS) -> dict:
    """Both readings as a JSON-ready dict: levels, sigma (flat gray), sigma_on_images and its pixel counts."""
    lv = torch.linspace(0, 1, levels, device=device)
    names = group_names(noise.groups)
    report = {"levels": lv.cpu().tolist(), "channels": noise.channels,
              "sigma": {n: noise.sigma_curve(lv, g).cpu().numpy().T.tolist() for g, n in enumerate(names)}}
    if on_images is not None:
        report["sigma_on_images"] = dict(zip(names, on_images.curves()))
        report["pixels_on_images"] = dict(zip(names, on_images.counts.tolist()))
    return report


def mid_gray(report: dict) -> dict[str, list[float]]:
    """σ (0–255) per group and channel at intensity 0.5: from the model distill draws from (the correlated model, in
    real mode: the curve the report draws boldest), else on the fit's images where the report has it (the noise the
    model applies to those photos), else on flat gray."""
    corr = report.get("correlated")
    if corr:
        x = np.asarray(corr["levels"], float)
        return {g: [round(float(np.interp(0.5, x[np.isfinite(np.asarray(c, float))],
                                          np.asarray(c, float)[np.isfinite(np.asarray(c, float))])), 2)
                    for c in [[np.nan if v is None else v for v in ch] for ch in chans]]
                for g, chans in corr["sigma"].items()}
    mid = len(report["levels"]) // 2
    out = {}
    for g, flat in report["sigma"].items():
        images = report.get("sigma_on_images", {}).get(g) or [[None] * len(c) for c in flat]
        out[g] = [round(f[mid] if i[mid] is None else i[mid], 2) for f, i in zip(flat, images)]
    return out


CHANNEL_COLOURS = {3: [("R", "#d62728"), ("G", "#2ca02c"), ("B", "#1f77b4")], 1: [("gray", "#333333")]}


def plot(report: dict, path: Path) -> None:
    """The report as a figure (matplotlib): noise σ against intensity per channel — what distill draws from (the
    correlated model, where the fit has one), CNNest on the fit's own images and on flat gray inputs, the spread over
    Bayer groups shaded — and, with a correlated model, how the noise correlates with its neighbours and across
    channels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corr = report.get("correlated")
    fig, axes = plt.subplots(1, 2 if corr else 1, figsize=(11 if corr else 6, 4), squeeze=False)
    ax = axes[0][0]
    levels = np.asarray(report["levels"])
    readings = []
    if corr:
        readings.append(("your camera's noise as the fast model learns it", corr["levels"], corr["sigma"], "-", 2.2))
    if "sigma_on_images" in report:
        readings.append(("measured on your photos", levels, report["sigma_on_images"], "--", 1.4))
    readings.append(("on a flat gray surface", levels, report["sigma"], ":", 1.2))
    for label, x, by_group, style, width in readings:
        arr = np.array([[[np.nan if v is None else v for v in ch] for ch in g] for g in by_group.values()], float)
        for c, (name, colour) in enumerate(CHANNEL_COLOURS[report["channels"]]):
            with warnings.catch_warnings():  # intensities no group has enough pixels at stay empty (NaN)
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, lo, hi = (f(arr[:, c], axis=0) for f in (np.nanmean, np.nanmin, np.nanmax))
            ax.plot(x, mean, style, color=colour, lw=width, label=f"{name}: {label}")
            if arr.shape[0] > 1:
                ax.fill_between(x, lo, hi, color=colour, alpha=0.08, lw=0)
    ax.set(xlabel="intensity (0 black – 1 white)", ylabel="noise σ (of 255)", xlim=(0, 1), ylim=(0, None),
           title="Noise level against brightness")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.2), ncol=2, frameon=False)  # below the axis label
    if corr:
        ax = axes[0][1]
        c = corr["correlations"]
        lags = np.arange(len(c["horizontal"][0]))
        for i, (name, colour) in enumerate(CHANNEL_COLOURS[report["channels"]]):
            ax.plot(lags, c["horizontal"][i], "-o", color=colour, ms=3, label=f"{name}, horizontal")
            ax.plot(lags, c["vertical"][i], "--", color=colour, label=f"{name}, vertical")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(lags)
        names = [n for n, _ in CHANNEL_COLOURS[report["channels"]]]
        pairs = [f"{names[a]}–{names[b]} {c['channels'][a][b]:.2f}" for a in range(len(names)) for b in range(a + 1, len(names))]
        ax.set(xlabel="distance (pixels)", ylabel="correlation of the noise", ylim=(-0.2, 1.05),
               title="Grain: correlation with neighbours" + (f"\nacross channels: {', '.join(pairs)}" if pairs else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def images_sigma(noise: NoiseModel, pairs: Iterable[tuple[np.ndarray, np.ndarray]],
                 device: torch.device = torch.device("cpu")) -> ImageSigma:
    """An ImageSigma over (y, x̂) pairs (e.g. a finished run's inputs and its denoised/ folder)."""
    acc = ImageSigma(noise, device)
    for y, x_hat in pairs:
        acc.add(y, x_hat)
    return acc
