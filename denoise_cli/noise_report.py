"""The noise report of a fit run: what the learned noise model says about the camera, as σ (0–255)
versus intensity per channel and Bayer group, in JSON and as a small plot.

Two readings of the same model. ``sigma`` reads CNNest on flat, noiseless gray inputs y = (x, x, x):
simple, but where a colour model has seen no data (real noise pulls the channels of y apart, and a
colour CNNest can read the noise level off that spread, so at zero spread it predicts too little).
``sigma_on_images`` averages Σn over the pixels of the fit's own noisy images, binned by the
stage-1 estimate x̂: the noise the model applies to those photos. Neither needs a clean image.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from .models.noise_model import NoiseModel

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
    """σ (0–255) per group and channel at intensity 0.5: on the fit's images where the report has it (the noise
    the model applies to those photos), else on flat gray."""
    mid = len(report["levels"]) // 2
    out = {}
    for g, flat in report["sigma"].items():
        images = report.get("sigma_on_images", {}).get(g) or [[None] * len(c) for c in flat]
        out[g] = [round(f[mid] if i[mid] is None else i[mid], 2) for f, i in zip(flat, images)]
    return out


def plot(report: dict, path: Path) -> None:
    """A small line plot drawn with Pillow: σ on the fit's images (thick, dark) and on flat gray inputs (thin,
    pale; thick and dark when it is the only reading), per channel and group."""
    from PIL import Image, ImageDraw

    w, h, m = 560, 360, 50
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    curves = [(2, report["sigma_on_images"])] if "sigma_on_images" in report else []
    curves.append((1 if curves else 2, report["sigma"]))  # pale and thin under the on-images curves
    values = [s for _, by_group in curves for g in by_group.values() for c in g for s in c if s is not None]
    ymax = max(5.0, max(values) * 1.15)
    d.rectangle([m, 20, w - 20, h - m], outline="black")
    for k in range(6):
        v = ymax * k / 5
        yy = h - m - (h - m - 20) * k / 5
        d.text((5, yy - 6), f"{v:.1f}", fill="black")
        d.line([m, yy, w - 20, yy], fill=(225, 225, 225))
    for k in range(6):
        xx = m + (w - 20 - m) * k / 5
        d.text((xx - 8, h - m + 6), f"{k / 5:.1f}", fill="black")
    d.text((w // 2 - 60, h - 22), "intensity (0-1)", fill="black")  # Pillow's default font is ASCII-only
    title = "noise sigma (0-255): dark on your images, pale on flat gray inputs" if len(curves) > 1 else \
        "learned noise sigma (0-255)"
    d.text((5, 2), title, fill="black")
    colors = [(200, 30, 30), (30, 150, 30), (30, 60, 200)] if report["channels"] == 3 else [(0, 0, 0)]
    for width, by_group in reversed(curves):  # the pale flat-gray curves first, under the others
        for gi, (gname, channel_curves) in enumerate(by_group.items()):
            for ci, curve in enumerate(channel_curves):
                color = colors[ci] if width == 2 else tuple((v + 2 * 255) // 3 for v in colors[ci])  # thin: pale
                pts = [None if s is None else (m + (w - 20 - m) * x, h - m - (h - m - 20) * s / ymax)
                       for x, s in zip(report["levels"], curve)]
                for a, b in zip(pts, pts[1:]):
                    if a is not None and b is not None:
                        d.line([*a, *b], fill=color, width=width)
                last = next((p for p in reversed(pts) if p is not None), None)
                if width == 2 and ci == 0 and last is not None and len(by_group) > 1:
                    d.text((last[0] - 60, last[1] - 12 - 10 * gi), gname, fill=colors[ci])
    im.save(path)


def images_sigma(noise: NoiseModel, pairs: Iterable[tuple[np.ndarray, np.ndarray]],
                 device: torch.device = torch.device("cpu")) -> ImageSigma:
    """An ImageSigma over (y, x̂) pairs (e.g. a finished run's inputs and its denoised/ folder)."""
    acc = ImageSigma(noise, device)
    for y, x_hat in pairs:
        acc.add(y, x_hat)
    return acc
