"""Fit a camera pipeline to noisy photos alone: the few numbers whose noise measures like the photos' noise.

The JPEG quality and subsampling are read from the files. The rest (sensor a and b, white balance, noise reduction
on brightness and colour, sharpening, demosaicking) are searched so that :func:`blind_stats` of the pipeline's noise
added to stand-ins for the clean scenes (the photos, denoised) measures like :func:`blind_stats` of the photos
themselves. Measuring both sides the same way cancels the estimator's own biases (the photos' detail in the
band-pass spreads), which is why the search compares measurements, not the raw statistics. Common random numbers keep
the objective deterministic, so a plain coordinate search converges.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..io import write_bytes_atomic
from .pipeline import DEMOSAIC, CameraPipeline, render
from .statistics import MIN_SIDE, PAIRS, blind_stats

#: Searched parameters: name → (lowest, highest, first step); a and b on a log10 scale.
SPACE: dict[str, tuple[float, float, float]] = {
    "log_a": (-5.0, -1.0, 0.5), "log_b": (-9.0, -2.0, 1.0), "wb_r": (1.0, 3.0, 0.4), "wb_b": (1.0, 3.0, 0.4),
    "luma_blur": (0.0, 1.5, 0.4), "chroma_blur": (0.0, 4.0, 1.0), "sharpen": (0.0, 1.5, 0.4), "contrast": (0.0, 0.9, 0.3),
}
CORRELATION_WEIGHT = 4.0  # a correlation error of 0.1 counts as a σ error of about 40 %
SWEEPS = 8  # passes of the coordinate search, each with half the previous steps


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


#: Where the search starts: a mid-range camera at a moderate ISO.
START = {"log_a": -3.0, "log_b": -5.0, "wb_r": 2.0, "wb_b": 1.6, "luma_blur": 0.0, "chroma_blur": 1.0,
         "sharpen": 0.0, "contrast": 0.3}


def coordinate_search(cost: Callable[[dict[str, float]], float], sweeps: int = SWEEPS,
                      on_step: Callable[[int, float], None] | None = None) -> tuple[dict[str, float], float, int]:
    """Minimise ``cost`` over SPACE from START: each sweep tries one step up and down per parameter and keeps the
    first that lowers it, then halves the steps. Returns the parameters, their cost and how many costs were taken."""
    theta = dict(START)
    steps = {k: v[2] for k, v in SPACE.items()}
    best = cost(theta)
    evaluations = 1
    for sweep in range(sweeps):
        for name, (lo, hi, _) in SPACE.items():
            for sign in (1, -1):
                trial = {**theta, name: float(np.clip(theta[name] + sign * steps[name], lo, hi))}
                if trial[name] == theta[name]:
                    continue
                c = cost(trial)
                evaluations += 1
                if c < best:
                    theta, best = trial, c
                    break
        if on_step is not None:
            on_step(sweep, best)
        steps = {k: v / 2 for k, v in steps.items()}
    return theta, best, evaluations


def calibrate(noisy: list[np.ndarray], scenes: list[np.ndarray], *, jpeg: tuple[int, str] | None,
              sweeps: int = SWEEPS, seed: int = 0, on_step: Callable[[int, float], None] | None = None
              ) -> tuple[CameraPipeline, dict]:
    """The pipeline whose noise on ``scenes`` (stand-ins for the clean photos) measures most like ``noisy``'s;
    returns it with the measurements {"target", "model", "distance"}."""
    target = blind_stats(noisy)
    base = CameraPipeline(jpeg_quality=jpeg[0] if jpeg else None, subsampling=jpeg[1] if jpeg else "4:2:0")
    cost = lambda th, b: distance(target, simulated_stats(pipeline_of(th, b), scenes, seed))  # noqa: E731
    theta, best, evaluations = coordinate_search(lambda th: cost(th, base), sweeps, on_step)
    for method in DEMOSAIC:  # the demosaicking, tried last at the fitted numbers
        if method != base.demosaic:
            other = replace(base, demosaic=method)
            c = cost(theta, other)
            if c < best:
                base, best = other, c
    p = pipeline_of(theta, base)
    return p, {"target": target, "model": simulated_stats(p, scenes, seed), "distance": best,
               "evaluations": evaluations}


CROPS = 8  # crops of the photos calibration measures: enough texture and flat areas, a minute of search
CROP_SIDE = 256


NLM_ALONE_H = 6.0  # non-local means strength for a stand-in from the photo itself (no denoiser given)
NLM_AFTER_H = 4.0  # the same, after a denoiser: it takes what the denoiser left of strong, off-model noise


def stand_in_scene(y: np.ndarray, denoise: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """A stand-in for the clean scene of a noisy photo (H×W×3 in [0,1]), from the photo alone: OpenCV's colour
    non-local means, on ``denoise(y)`` where a denoiser is given (a network trained on the prior over cameras keeps
    texture at low ISO and takes strong noise out at high ISO, which one NLM strength cannot do both), else on y."""
    import cv2

    h = NLM_AFTER_H if denoise is not None else NLM_ALONE_H
    x = denoise(np.ascontiguousarray(y, dtype=np.float32)) if denoise is not None else y
    x8 = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    return cv2.fastNlMeansDenoisingColored(x8, None, h, h, 7, 21).astype(np.float32) / 255


def crops_of(images: list[np.ndarray], n: int = CROPS, side: int = CROP_SIDE) -> list[np.ndarray]:
    """Up to ``n`` centre crops of at most side² from photos spread over the list (a few per photo when fewer)."""
    picks = np.linspace(0, len(images) - 1, min(n, len(images))).round().astype(int) if images else []
    out = []
    for i in picks:
        im = images[i]
        h, w = im.shape[:2]
        top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
        out.append(np.ascontiguousarray(im[top:top + side, left:left + side, :3]))
    return out


def calibrate_photos(images: list[np.ndarray], *, jpeg: tuple[int, str] | None, seed: int = 0,
                     on_step: Callable[[int, float], None] | None = None,
                     denoise: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[CameraPipeline, dict] | None:
    """:func:`calibrate` on centre crops of noisy RGB photos, with their :func:`stand_in_scene` copies (through
    ``denoise`` where given) as the scenes; None when no photo is large enough to measure (under MIN_SIDE a side)."""
    noisy = crops_of([im for im in images if min(im.shape[:2]) >= MIN_SIDE])
    if not noisy:
        return None
    return calibrate(noisy, [stand_in_scene(y, denoise) for y in noisy], jpeg=jpeg, seed=seed, on_step=on_step)


def save_pipeline(p: CameraPipeline, path: str | Path, **meta: object) -> None:
    """Write a calibrated pipeline as JSON (its numbers, and what calibration measured), atomically."""
    write_bytes_atomic(Path(path), json.dumps({"pipeline": p.to_dict(), **meta}, indent=2, default=float).encode())


def load_pipeline(path: str | Path) -> CameraPipeline:
    """Read a pipeline written by :func:`save_pipeline`."""
    return CameraPipeline.from_dict(json.loads(Path(path).read_text())["pipeline"])
