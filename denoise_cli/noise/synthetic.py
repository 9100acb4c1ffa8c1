"""Synthetic noise models for benchmarks and training (all on images in [0,1], H×W×C float).

Specs are short strings so that a CLI flag, a benchmark table and a weights.toml entry all
say the same thing: ``awgn:25`` (σ on the 0–255 scale), ``awgn:0-50`` (σ drawn uniformly per
image, for blind training), ``hg:40,10`` (heteroscedastic Gaussian, variance α²x + δ² on the
0–255 scale with x in [0,1], the paper's definition), ``mg:75`` (multivariate Gaussian,
Σ = 75²·UΛUᵀ), ``camera:3200`` (Poisson–Gaussian on a mosaicked linear image at that ISO,
demosaicked, white-balanced and gamma-encoded, so spatially and cross-channel correlated), ``pipeline`` (a camera
drawn per image from the prior over camera pipelines, noise.prior: sensor noise, demosaicking, colour, tone, in-camera
noise reduction, JPEG) or ``pipeline:A`` (the same with the sensor's shot-noise coefficient fixed at A, e.g. 0.002).
The noise functions return unclipped floats; :func:`quantize` makes the saved 8-bit image.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from ..errors import NoiseSpecError
from .pipeline import linear_to_srgb, mosaic, render, srgb_to_linear
from .prior import DEFAULT_PRIOR

KINDS = ("awgn", "hg", "mg", "camera", "pipeline")



@dataclass(frozen=True)
class NoiseSpec:
    """A parsed noise spec: the kind and its numeric parameters."""

    kind: str
    params: tuple[float, ...]

    def __str__(self) -> str:
        if not self.params:
            return self.kind
        if self.kind == "awgn" and len(self.params) == 2:
            return f"awgn:{self.params[0]:g}-{self.params[1]:g}"
        return f"{self.kind}:" + ",".join(f"{p:g}" for p in self.params)


def parse_spec(text: str) -> NoiseSpec:
    """Parse ``kind:params``; raises :class:`NoiseSpecError` with the accepted forms."""
    usage = "expected awgn:SIGMA, awgn:LO-HI, hg:ALPHA,DELTA, mg:SCALE, camera:ISO, pipeline or pipeline:A"
    kind, _, rest = text.strip().lower().partition(":")
    if kind == "pipeline" and not rest:
        return NoiseSpec(kind, ())
    if kind not in KINDS or not rest:
        raise NoiseSpecError(f"bad noise spec {text!r}: {usage}")
    try:
        if kind == "awgn" and "-" in rest:
            lo, hi = (float(v) for v in rest.split("-"))
            if not 0 <= lo <= hi:
                raise ValueError
            return NoiseSpec(kind, (lo, hi))
        params = tuple(float(v) for v in rest.split(","))
    except ValueError:
        raise NoiseSpecError(f"bad noise spec {text!r}: {usage}") from None
    arity = {"awgn": 1, "hg": 2, "mg": 1, "camera": 1, "pipeline": 1}[kind]
    if len(params) != arity or any(p < 0 for p in params):
        raise NoiseSpecError(f"bad noise spec {text!r}: {usage}")
    return NoiseSpec(kind, params)


def image_rng(seed: int, name: str) -> np.random.Generator:
    """A generator fixed by the run's seed and the image's name, so each image's noise is the
    same whatever order or subset of images a run sees."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def add_noise(clean: np.ndarray, spec: NoiseSpec | str, rng: np.random.Generator) -> np.ndarray:
    """Return ``clean`` plus noise drawn from ``spec`` (float32, unclipped)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    x = np.asarray(clean, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if spec.kind == "awgn":
        sigma = spec.params[0] if len(spec.params) == 1 else rng.uniform(*spec.params)
        y = x + rng.standard_normal(x.shape) * (sigma / 255.0)
    elif spec.kind == "hg":
        alpha, delta = spec.params
        std = np.sqrt(alpha**2 * np.clip(x, 0, None) + delta**2) / 255.0
        y = x + rng.standard_normal(x.shape) * std
    elif spec.kind == "mg":
        factor = mg_factor(spec.params[0], x.shape[-1], rng)  # this image's covariance first, then its noise
        y = x + rng.standard_normal(x.shape) @ factor.T
    elif spec.kind == "pipeline":
        if x.shape[-1] != 3:
            raise NoiseSpecError("pipeline noise needs an RGB image")
        camera = DEFAULT_PRIOR.sample(rng, shot=spec.params[0] if spec.params else None)
        y = render(x, camera, rng)  # already 8-bit and JPEG-compressed, as the camera saved it
    else:
        y = camera_render(x, spec.params[0], rng)
    return y.astype(np.float32).reshape(np.shape(clean))


def mg_factor(scale: float, channels: int, rng: np.random.Generator) -> np.ndarray:
    """A factor L with L·Lᵀ = (scale/255)²·UΛUᵀ: U random orthogonal, Λ uniform in (0,1)."""
    q, r = np.linalg.qr(rng.standard_normal((channels, channels)))
    u = q * np.sign(np.diag(r))  # Haar-distributed orthogonal matrix
    lam = rng.uniform(0.0, 1.0, channels)
    return (scale / 255.0) * u * np.sqrt(lam)


# Camera pipeline constants: white-balance gains and the noise at ISO 100 (linear, [0,1] units).
WB_GAINS = np.array([2.0, 1.0, 1.6])
SHOT_PER_ISO100 = 1.0e-4  # Poisson: variance = SHOT·x, SHOT ∝ ISO
READ_PER_ISO100 = 5.0e-4  # Gaussian read-noise σ ∝ ISO


def camera_render(x: np.ndarray, iso: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Undo gamma and white balance, mosaic (RGGB), Poisson–Gaussian noise, demosaic, redo both.

    Without ``rng`` no noise is added: the same pipeline's noise-free rendering, so that
    ``camera_render(x, iso, rng) − camera_render(x, iso)`` is the camera noise alone, without the
    demosaicking error of x that ``y − x`` also holds (the truth benchmarks/noise_fidelity.py compares with)."""
    if x.shape[-1] != 3:
        raise NoiseSpecError("camera noise needs an RGB image")
    raw = mosaic(srgb_to_linear(x) / WB_GAINS, "RGGB")
    if rng is not None:
        shot = SHOT_PER_ISO100 * iso / 100.0
        read = READ_PER_ISO100 * iso / 100.0
        raw = rng.poisson(np.clip(raw, 0, None) / shot) * shot + rng.standard_normal(raw.shape) * read
    raw16 = np.round(np.clip(raw, 0.0, 1.0) * 65535).astype(np.uint16)
    # OpenCV names Bayer patterns from the second row; an RGGB mosaic is its "BG" code.
    rgb = cv2.cvtColor(raw16, cv2.COLOR_BayerBG2RGB).astype(np.float64) / 65535
    return linear_to_srgb(rgb * WB_GAINS)


def quantize(x: np.ndarray, bits: int = 8) -> np.ndarray:
    """Clip to [0,1] and round to ``bits`` as a saved image would be (returns float32 in [0,1])."""
    top = 2**bits - 1
    return (np.round(np.clip(x, 0.0, 1.0) * top) / top).astype(np.float32)
