"""Sensor noise on camera RAW data: clean photos taken back to a camera's Bayer planes (Brooks et al., CVPR 2019,
"Unprocessing images for learned raw denoising"), Poisson–Gaussian noise of variance a·x + b per plane, and the
per-pixel noise level a RAW model reads as guide planes.

Planes are H/2×W/2×4 float arrays in [0,1] of the white level (black 0), always in the canonical order R, G, G, B:
a file's own layout is put in that order by :func:`to_canonical` and back by :func:`from_canonical`, so one model
serves every Bayer layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..io.bayer import BAYER_LAYOUTS, pack
from .pipeline import colour_matrix, mosaic, srgb_to_linear, untone

@dataclass(frozen=True)
class SensorNoise:
    """Poisson–Gaussian sensor noise per plane (canonical order): variance a[c]·x + b[c] on [0,1] of the white
    level."""

    a: tuple[float, float, float, float]
    b: tuple[float, float, float, float]

    @classmethod
    def uniform(cls, a: float, b: float) -> "SensorNoise":
        return cls((a,) * 4, (b,) * 4)

    def to_dict(self) -> dict:
        return {"a": list(self.a), "b": list(self.b)}

    @classmethod
    def from_dict(cls, d: dict) -> "SensorNoise":
        a, b = tuple(float(v) for v in d["a"]), tuple(float(v) for v in d["b"])
        if len(a) != 4 or len(b) != 4 or min(a + b) < 0 or not np.isfinite(a + b).all():
            raise ValueError(f"sensor noise needs four a ≥ 0 and four b ≥ 0, got a={list(a)}, b={list(b)}")
        return cls(a, b)  # type: ignore[arg-type]


def canonical_order(cfa: str) -> list[int]:
    """Indices that put the planes of layout ``cfa`` in R, G, G, B order."""
    greens = [i for i, c in enumerate(cfa) if c == "G"]
    return [cfa.index("R"), greens[0], greens[1], cfa.index("B")]


def to_canonical(planes: np.ndarray, cfa: str) -> np.ndarray:
    return planes[..., canonical_order(cfa)]


def from_canonical(planes: np.ndarray, cfa: str) -> np.ndarray:
    return planes[..., np.argsort(canonical_order(cfa))]


@dataclass(frozen=True)
class SensorPrior:
    """Ranges of sensors, ISOs, light and exposure a blind RAW model covers; :meth:`sample` draws one.

    a is log-uniform over base ISO to beyond ISO 25 600 of full-frame and small sensors (darktable's noise profiles
    span about 1e-5 to a few 1e-3 after white balance; Brooks et al. use 1e-4 to 1.2e-2 on the raw scale); log10 b
    follows 1.5·log10 a with an offset wide enough for sensors with high and low read noise."""

    shot: tuple[float, float] = (1e-4, 3e-2)
    read_slope: float = 1.5
    read_offset: tuple[float, float] = (-1.6, 0.3)
    channel_jitter: float = 0.1
    wb_red: tuple[float, float] = (1.0, 2.6)  # the camera's white-balance gains: daylight ≈ 2, tungsten lower
    wb_blue: tuple[float, float] = (1.0, 2.4)
    saturation: tuple[float, float] = (0.0, 1.0)
    contrast: tuple[float, float] = (0.0, 0.5)
    exposure: tuple[float, float] = (0.15, 1.0)  # log-uniform: raw files are exposed to keep highlights

    def sample_noise(self, rng: np.random.Generator) -> SensorNoise:
        a = float(np.exp(rng.uniform(*np.log(self.shot))))
        b = 10 ** (self.read_slope * np.log10(a) + rng.uniform(*self.read_offset))
        ja, jb = np.exp(rng.normal(0, self.channel_jitter, (2, 4)))
        return SensorNoise(tuple(float(a * j) for j in ja), tuple(float(b * j) for j in jb))  # type: ignore[arg-type]

    def unprocess(self, srgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A clean sRGB H×W×3 crop (even sides) → the canonical Bayer planes a camera drawn from the prior would have
        recorded of it, noise-free; the layout is drawn too, so the planes' relative phase varies as between files."""
        lin = srgb_to_linear(untone(np.clip(srgb, 0, 1), float(rng.uniform(*self.contrast))))
        cam = lin @ np.linalg.inv(colour_matrix(float(rng.uniform(*self.saturation)))).T
        wb = np.array([rng.uniform(*self.wb_red), 1.0, rng.uniform(*self.wb_blue)])
        exposure = float(np.exp(rng.uniform(*np.log(self.exposure))))
        cam = np.clip(cam / wb * exposure, 0.0, 1.0).astype(np.float32)
        cfa = BAYER_LAYOUTS[int(rng.integers(len(BAYER_LAYOUTS)))]
        return to_canonical(pack(mosaic(cam, cfa)), cfa)


DEFAULT_SENSOR_PRIOR = SensorPrior()


def add_noise(planes: np.ndarray, noise: SensorNoise, rng: np.random.Generator) -> np.ndarray:
    """Planes with Poisson–Gaussian noise (Gaussian of variance a·x + b, the usual approximation), clipped at the
    white level as a sensor saturates."""
    var = np.asarray(noise.a, np.float32) * np.clip(planes, 0, 1) + np.asarray(noise.b, np.float32)
    return np.minimum(planes + rng.standard_normal(planes.shape).astype(np.float32) * np.sqrt(var), 1.0)


def noise_guides(noisy: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,4,H,W) noisy planes and per-plane a, b (N,4) → the noise σ at each pixel, sqrt(a·y + b) with y clipped to
    [0,1]: the guide planes a RAW model reads next to the planes."""
    var = a[..., None, None] * noisy.clamp(0, 1) + b[..., None, None]
    return var.clamp_min(0).sqrt()


#: Share of each brightness bin's pixels, the flattest, that the noise is read on (texture leaks into the rest).
FLAT_SHARE = 0.25
_BINS = 16


def noise_samples(planes: np.ndarray, max_pixels: int = 400_000, seed: int = 0) -> np.ndarray:
    """What :func:`estimate_sensor_noise` reads of one frame of canonical planes: per green pair its brightness, the
    difference of the two greens and the local activity of the scene (3×N float32), at most ``max_pixels`` of them
    drawn at random, so that many large RAW files can be pooled in little memory."""
    import cv2

    g1, g2 = planes[..., 1].astype(np.float64), planes[..., 2].astype(np.float64)
    mean = (g1 + g2) / 2
    level = cv2.blur(mean, (3, 3)).ravel()
    activity = cv2.blur(np.abs(cv2.Laplacian(cv2.blur(mean, (5, 5)), cv2.CV_64F)), (5, 5)).ravel()
    out = np.stack([level, (g1 - g2).ravel(), activity]).astype(np.float32)
    if out.shape[1] > max_pixels:
        out = out[:, np.random.default_rng(seed).choice(out.shape[1], max_pixels, replace=False)]
    return out


def estimate_sensor_noise(planes: list[np.ndarray], bins: int = _BINS) -> SensorNoise:
    """Poisson–Gaussian (a, b) of canonical planes from noisy data alone, pooled over the given frames (one camera
    at one ISO); see :func:`fit_sensor_noise`."""
    return fit_sensor_noise([noise_samples(p) for p in planes], bins)


def fit_sensor_noise(samples: list[np.ndarray], bins: int = _BINS) -> SensorNoise:
    """Poisson–Gaussian (a, b) from :func:`noise_samples` of one or more frames.

    The two green sites of a Bayer cell are diagonal neighbours: their difference is nearly free of the scene and
    carries twice the noise variance. Its robust spread (MAD) is read per brightness bin on the flattest quarter of
    each bin and a·x + b fitted to it (weighted least squares, a, b ≥ 0). One (a, b) serves all four planes: on raw
    values every colour site has the same conversion gain and read noise."""
    x, d, act = (v.astype(np.float64) for v in np.concatenate(samples, axis=1))
    centres, variances = [], []
    for part in np.array_split(np.argsort(x, kind="stable"), bins):
        if part.size < 16:
            continue
        flat = part[act[part] <= np.quantile(act[part], FLAT_SHARE)]
        spread = 1.4826 * np.median(np.abs(d[flat] - np.median(d[flat])))
        centres.append(np.median(x[flat]))
        variances.append(spread**2 / 2)
    xs, vs = np.array(centres), np.array(variances)
    keep = (xs > 0.01) & (xs < 0.9)
    if keep.sum() < 2:
        keep = np.ones_like(xs, bool)
    if keep.sum() < 2:
        raise ValueError("too few pixels to measure the sensor noise")
    w = 1 / np.maximum(vs[keep], 1e-12)  # relative errors count alike in dark and bright bins
    a, b = np.linalg.lstsq(np.stack([xs[keep], np.ones(keep.sum())], 1) * w[:, None], vs[keep] * w, rcond=None)[0]
    if b < 0:
        a, b = float((xs[keep] * w) @ vs[keep] / ((xs[keep] * w) @ xs[keep])), 0.0
    return SensorNoise.uniform(max(float(a), 1e-8), max(float(b), 0.0))
