"""The statistics that tell one camera's sRGB noise from another's, measured two ways.

:class:`NoiseStats` accumulates them from a known noise field (noisy − reference, or a synthetic draw): σ per channel
and brightness, the correlation of pixels 1, 2 and 4 apart (horizontal and vertical pooled), and of R with G and B
with G. :func:`blind_stats` measures related statistics from noisy photos alone (robust spreads of band-pass details);
they are biased by the photos' own detail, the same way for a synthetic camera measured alike, which is how
calibration compares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .levels import MAD_TO_SIGMA

LAGS = (1, 2, 4)
BINS = 8
MIN_PIXELS = 2000  # a brightness bin with fewer pixels has no σ
PAIRS = ("rg", "bg")
MIN_SIDE = 33  # images smaller than this have no interior left once the band-pass borders are cut


@dataclass
class NoiseStats:
    """σ per channel and brightness bin, correlations at LAGS and between channels, accumulated over noise fields."""

    sq: np.ndarray = field(default_factory=lambda: np.zeros((3, BINS)))
    n: np.ndarray = field(default_factory=lambda: np.zeros((3, BINS)))
    sums: dict[str, np.ndarray] = field(default_factory=lambda: {k: np.zeros(3) for k in (*map(str, LAGS), *PAIRS)})

    def add(self, noise: np.ndarray, brightness: np.ndarray, mask: np.ndarray | None = None) -> None:
        """One H×W×3 noise field, with the H×W×3 brightness it was read at (the reference, or a smoothed photo)."""
        r = noise.astype(np.float64)
        m = np.ones(r.shape[:2], bool) if mask is None else mask
        b = np.clip((brightness * BINS).astype(int), 0, BINS - 1)
        for c in range(3):
            self.sq[c] += np.bincount(b[..., c][m], r[..., c][m] ** 2, BINS)
            self.n[c] += np.bincount(b[..., c][m], None, BINS)
        for lag in LAGS:
            for a, bb, mm in ((r[:, :-lag], r[:, lag:], m[:, :-lag] & m[:, lag:]),
                              (r[:-lag], r[lag:], m[:-lag] & m[lag:])):
                self.sums[str(lag)] += [(a * bb)[mm].sum(), (a * a)[mm].sum(), (bb * bb)[mm].sum()]
        for key, c in (("rg", 0), ("bg", 2)):
            a, g = r[..., c][m], r[..., 1][m]
            self.sums[key] += [(a * g).sum(), (a * a).sum(), (g * g).sum()]

    def summary(self) -> dict:
        """{"sigma": 3×BINS on 0–255 (NaN where too few pixels), "1"/"2"/"4"/"rg"/"bg": correlations}."""
        sigma = np.sqrt(self.sq / np.maximum(self.n, 1)) * 255
        sigma[self.n < MIN_PIXELS] = np.nan
        corr = {k: float(v[0] / np.sqrt(v[1] * v[2])) if v[1] > 0 and v[2] > 0 else float("nan")
                for k, v in self.sums.items()}
        return {"sigma": sigma.tolist(), **corr}


def relative_errors(truth: dict, model: dict) -> dict:
    """Each statistic's relative error of ``model`` against ``truth``: σ's worst and mean bin, each correlation."""
    t, m = np.array(truth["sigma"], float), np.array(model["sigma"], float)
    rel = np.abs(m / t - 1)
    out = {"sigma_max": float(np.nanmax(rel)), "sigma_mean": float(np.nanmean(rel))}
    out.update({k: abs(model[k] / truth[k] - 1) for k in (*map(str, LAGS), *PAIRS)})
    return out


SCALES = (1, 2, 4)


def _bands(z: np.ndarray) -> list[np.ndarray]:
    """Difference-of-Gaussians bands of z (H×W×3): z − G₁z, G₁z − G₂z, G₂z − G₄z (σ in pixels). Natural images are
    sparse in each, so their robust spread is mostly the noise's, at that scale."""
    import cv2

    levels = [z] + [cv2.GaussianBlur(z, (0, 0), s, borderType=cv2.BORDER_REFLECT) for s in SCALES]
    return [(levels[i] - levels[i + 1])[8:-8, 8:-8].reshape(-1, 3) for i in range(len(SCALES))]


def _robust_sigma(v: np.ndarray) -> float:
    return float(np.median(np.abs(v)) * MAD_TO_SIGMA) if len(v) else float("nan")


def _robust_correlation(u: np.ndarray, v: np.ndarray) -> float:
    """Gnanadesikan–Kettenring: the correlation from robust spreads of the standardised sum and difference."""
    su, sv = _robust_sigma(u), _robust_sigma(v)
    if not su > 0 or not sv > 0:
        return float("nan")
    p, m = _robust_sigma(u / su + v / sv) ** 2, _robust_sigma(u / su - v / sv) ** 2
    return (p - m) / (p + m)


def blind_stats(images: list[np.ndarray]) -> dict:
    """Noise statistics of H×W×3 noisy photos in [0,1] without a reference, from robust spreads (medians, which
    edges barely move) of difference-of-Gaussians bands: "sigma" (3×BINS, the finest band's σ per brightness,
    0–255), "s2"/"s4" (per channel, the next bands' spread over the finest's: larger when the noise is correlated),
    "rg"/"bg" (the channels' correlation in the finest band). They are not the noise's own statistics (the bands
    filter it), so calibration compares them only with the same measurement of a model's photos."""
    parts = [(_bands(im.astype(np.float32)), im[8:-8, 8:-8].reshape(-1, 3)) for im in images
             if min(im.shape[:2]) >= MIN_SIDE]
    bands = [np.concatenate([p[0][k] for p in parts]).astype(np.float64) for k in range(len(SCALES))]
    level = np.concatenate([p[1] for p in parts])
    bins = np.clip((level * BINS).astype(int), 0, BINS - 1)
    sigma = np.full((3, BINS), np.nan)
    for c in range(3):
        for b in range(BINS):
            sel = bands[0][bins[:, c] == b, c]
            if len(sel) >= MIN_PIXELS:
                sigma[c, b] = _robust_sigma(sel) * 255
    out: dict = {"sigma": sigma.tolist()}
    whole = [_robust_sigma(bands[0][:, c]) for c in range(3)]
    for k, band in zip(SCALES[1:], bands[1:]):
        out[f"s{k}"] = [_robust_sigma(band[:, c]) / whole[c] if whole[c] > 0 else float("nan") for c in range(3)]
    out["rg"] = _robust_correlation(bands[0][:, 0], bands[0][:, 1])
    out["bg"] = _robust_correlation(bands[0][:, 2], bands[0][:, 1])
    return out
