"""Fit a camera pipeline to noisy photos alone: the few numbers whose noise measures like the photos' noise.

The JPEG quality and subsampling are read from the files. The rest (sensor a and b, white balance, noise reduction
on brightness and colour, sharpening, demosaicking) are searched so that :func:`blind_stats` of the pipeline's noise
added to stand-ins for the clean scenes (the photos, denoised) measures like :func:`blind_stats` of the photos
themselves. Measuring both sides the same way cancels the estimator's own biases (the photos' detail in the
band-pass spreads), which is why the search compares measurements, not the raw statistics. Common random numbers keep
the objective deterministic, so a plain coordinate search converges.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from .pipeline import DEMOSAIC, CameraPipeline, render
from .statistics import PAIRS, blind_stats

#: Searched parameters: name → (lowest, highest, first step); a and b on a log10 scale.
SPACE: dict[str, tuple[float, float, float]] = {
    "log_a": (-5.0, -1.0, 0.5), "log_b": (-9.0, -2.0, 1.0), "wb_r": (1.0, 3.0, 0.4), "wb_b": (1.0, 3.0, 0.4),
    "luma_blur": (0.0, 1.5, 0.4), "chroma_blur": (0.0, 4.0, 1.0), "sharpen": (0.0, 1.5, 0.4), "contrast": (0.0, 0.9, 0.3),
}
CORRELATION_WEIGHT = 4.0  # a correlation error of 0.1 counts as a σ error of about 40 %


def pipeline_of(theta: dict[str, float], base: CameraPipeline) -> CameraPipeline:
    a, b = 10 ** theta["log_a"], 10 ** theta["log_b"]
    return replace(base, shot=(a, a, a), read=(b, b, b), wb=(theta["wb_r"], 1.0, theta["wb_b"]),
                   luma_blur=theta["luma_blur"], chroma_blur=theta["chroma_blur"], sharpen=theta["sharpen"],
                   contrast=theta["contrast"])


def distance(target: dict, model: dict) -> float:
    """How far one set of measured statistics is from another: σ on a log scale, correlations in absolute terms."""
    t, m = np.array(target["sigma"], float), np.array(model["sigma"], float)
    ok = np.isfinite(t) & np.isfinite(m) & (t > 0) & (m > 0)
    d = float(np.mean((np.log(m[ok]) - np.log(t[ok])) ** 2)) if ok.any() else 10.0
    for k in ("s2", "s4"):
        d += float(np.nanmean((np.log(model[k]) - np.log(target[k])) ** 2))
    for k in PAIRS:
        if np.isfinite(target[k]) and np.isfinite(model[k]):
            d += CORRELATION_WEIGHT * (model[k] - target[k]) ** 2
    return d


def simulated_stats(p: CameraPipeline, scenes: list[np.ndarray], seed: int = 0) -> dict:
    """blind_stats of this pipeline's photos of the scenes (the same noise draw for every p: common numbers)."""
    return blind_stats([render(x, p, np.random.default_rng([seed, i])) for i, x in enumerate(scenes)])


def calibrate(noisy: list[np.ndarray], scenes: list[np.ndarray], *, jpeg: tuple[int, str] | None,
              sweeps: int = 8, seed: int = 0, on_step: Callable[[int, float], None] | None = None
              ) -> tuple[CameraPipeline, dict]:
    """The pipeline whose noise on ``scenes`` (stand-ins for the clean photos) measures most like ``noisy``'s;
    returns it with the measurements {"target", "model", "distance"}."""
    target = blind_stats(noisy)
    base = CameraPipeline(jpeg_quality=jpeg[0] if jpeg else None, subsampling=jpeg[1] if jpeg else "4:2:0")
    theta = {"log_a": -3.0, "log_b": -5.0, "wb_r": 2.0, "wb_b": 1.6, "luma_blur": 0.0, "chroma_blur": 1.0,
             "sharpen": 0.0, "contrast": 0.3}
    steps = {k: v[2] for k, v in SPACE.items()}
    cost = lambda th, b: distance(target, simulated_stats(pipeline_of(th, b), scenes, seed))  # noqa: E731
    best = cost(theta, base)
    evaluations = 1
    for sweep in range(sweeps):
        for name, (lo, hi, _) in SPACE.items():
            for sign in (1, -1):
                trial = {**theta, name: float(np.clip(theta[name] + sign * steps[name], lo, hi))}
                if trial[name] == theta[name]:
                    continue
                c = cost(trial, base)
                evaluations += 1
                if c < best:
                    theta, best = trial, c
                    break
        if on_step is not None:
            on_step(sweep, best)
        steps = {k: v / 2 for k, v in steps.items()}
    for method in DEMOSAIC:  # the demosaicking, tried last at the fitted numbers
        if method != base.demosaic:
            other = replace(base, demosaic=method)
            c = cost(theta, other)
            if c < best:
                base, best = other, c
    p = pipeline_of(theta, base)
    return p, {"target": target, "model": simulated_stats(p, scenes, seed), "distance": best,
               "evaluations": evaluations}
