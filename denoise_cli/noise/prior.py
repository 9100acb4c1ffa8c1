"""A prior over camera pipelines: the range of real cameras and ISOs a blind default model has to cover.

The sensor's shot-noise coefficient a is drawn log-uniformly over the range published per-camera fits span (darktable's
noise profiles: about 1e-5 at base ISO to a few 1e-3 at ISO 25 600 on white-balanced raw values; here before white
balance, and widened upwards for small sensors and pushed exposures, as Brooks et al. 2019 do). The read-noise variance
b follows a with the slope those fits show between ISOs (log b ≈ 1.5·log a + c) and a scatter; everything after the
sensor (white balance, colour matrix, tone, demosaicking, noise reduction, sharpening, JPEG) is drawn from the ranges
cameras and raw developers use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pipeline import CFA_CODES, DEMOSAIC, CameraPipeline


@dataclass(frozen=True)
class PipelinePrior:
    """Ranges of the pipeline's parameters; :meth:`sample` draws one camera."""

    shot: tuple[float, float] = (1e-4, 2e-2)  # a, log-uniform
    read_slope: float = 1.5  # log10 b = slope·log10 a + offset + N(0, scatter)
    read_offset: float = -0.7
    read_scatter: float = 0.3
    channel_jitter: float = 0.1  # per-channel a and b scaled by exp(N(0, jitter))
    wb_red: tuple[float, float] = (1.5, 2.6)
    wb_blue: tuple[float, float] = (1.2, 2.3)
    saturation: tuple[float, float] = (0.2, 1.0)
    contrast: tuple[float, float] = (0.0, 0.5)
    luma_blur: tuple[float, float] = (0.3, 1.2)
    chroma_blur: tuple[float, float] = (0.5, 3.0)
    sharpen: tuple[float, float] = (0.1, 1.0)
    p_luma_blur: float = 0.5
    p_chroma_blur: float = 0.7
    p_sharpen: float = 0.4
    p_jpeg: float = 0.85
    jpeg_quality: tuple[int, int] = (70, 98)
    p_420: float = 0.75

    def sample(self, rng: np.random.Generator, *, shot: float | None = None) -> CameraPipeline:
        """One camera drawn from the prior (``shot`` fixes a, e.g. to sweep noise levels)."""
        a = shot if shot is not None else float(np.exp(rng.uniform(*np.log(self.shot))))
        b = 10 ** (self.read_slope * np.log10(a) + self.read_offset + rng.normal(0, self.read_scatter))
        jitter = lambda: tuple(float(v) for v in np.exp(rng.normal(0, self.channel_jitter, 3)))  # noqa: E731
        ja, jb = jitter(), jitter()

        def maybe(p: float, lo_hi: tuple[float, float]) -> float:
            return float(rng.uniform(*lo_hi)) if rng.random() < p else 0.0

        quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)) if rng.random() < self.p_jpeg else None
        return CameraPipeline(
            shot=tuple(a * j for j in ja), read=tuple(float(b) * j for j in jb),
            wb=(float(rng.uniform(*self.wb_red)), 1.0, float(rng.uniform(*self.wb_blue))),
            saturation=float(rng.uniform(*self.saturation)), contrast=float(rng.uniform(*self.contrast)),
            demosaic=DEMOSAIC[int(rng.integers(len(DEMOSAIC)))], cfa=list(CFA_CODES)[int(rng.integers(4))],
            luma_blur=maybe(self.p_luma_blur, self.luma_blur), chroma_blur=maybe(self.p_chroma_blur, self.chroma_blur),
            sharpen=maybe(self.p_sharpen, self.sharpen), jpeg_quality=quality,
            subsampling="4:2:0" if rng.random() < self.p_420 else "4:4:4")


DEFAULT_PRIOR = PipelinePrior()
