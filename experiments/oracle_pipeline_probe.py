"""Control for the calibrated camera pipeline: does a pipeline fitted to a PolyU camera's *true* noise statistics
(noisy − reference) make `distill` beat the shipped default on that camera? If it does, blind calibration is what
limits `--noise-model pipeline`; if not, the pipeline's form (or the training time) is.

    python experiments/oracle_pipeline_probe.py CAMERA FIT_RUN OUT_RUN

Searches the same parameters by noise.calibrate's coordinate search (common random numbers) on 8 centre crops of the
camera's references, minimising the squared log error of σ per channel and brightness plus 4× the squared error of
the 1/2/4-pixel and R–G/B–G correlations of the true noise; then copies FIT_RUN to OUT_RUN with that pipeline as its
camera_pipeline.json. Then: `denoise-cli distill CLEAN --fit OUT_RUN --noise-model pipeline ...`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

from benchmarks.noise_fidelity import POLYU, strong_edges
from denoise_cli.io import read_image
from denoise_cli.noise.calibrate import CORRELATION_WEIGHT, coordinate_search, crops_of, pipeline_of, save_pipeline
from denoise_cli.noise.jpeg_settings import jpeg_settings
from denoise_cli.noise.pipeline import CameraPipeline, finish, render
from denoise_cli.noise.statistics import LAGS, PAIRS, NoiseStats


def stats(noisy: list[np.ndarray], refs: list[np.ndarray]) -> dict:
    s = NoiseStats()
    for y, x in zip(noisy, refs):
        s.add(y - x, x, strong_edges(x))
    return s.summary()


def distance(t: dict, m: dict) -> float:
    ts, ms = np.array(t["sigma"], float), np.array(m["sigma"], float)
    ok = np.isfinite(ts) & np.isfinite(ms) & (ts > 0) & (ms > 0)
    d = float(np.mean((np.log(ms[ok]) - np.log(ts[ok])) ** 2))
    return d + sum(CORRELATION_WEIGHT * (m[k] - t[k]) ** 2 for k in (*map(str, LAGS), *PAIRS))


def main() -> None:
    cam, fit_run, out_run = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    names = sorted(p.name for p in (POLYU / "noisy").glob(cam + "_*"))
    ys = crops_of([read_image(POLYU / "noisy" / n).pixels for n in names])
    xs = crops_of([read_image(POLYU / "clean" / n).pixels for n in names])
    target = stats(ys, xs)
    jpeg = jpeg_settings(POLYU / "noisy" / names[0])
    base = CameraPipeline(jpeg_quality=jpeg[0] if jpeg else None, subsampling=jpeg[1] if jpeg else "4:2:0")

    def cost(theta: dict) -> float:
        p = pipeline_of(theta, base)
        return distance(target, stats([render(x, p, np.random.default_rng([0, i])) - finish(x, p) + x
                                       for i, x in enumerate(xs)], xs))

    report = lambda sweep, best: print(f"sweep {sweep}: distance {best:.4f}", flush=True)  # noqa: E731
    theta, _, _ = coordinate_search(cost, on_step=report)
    p = pipeline_of(theta, base)
    model = stats([render(x, p, np.random.default_rng([1, i])) - finish(x, p) + x for i, x in enumerate(xs)], xs)
    for k in (*map(str, LAGS), *PAIRS):
        print(f"{k}: model {model[k]:.2f} truth {target[k]:.2f}")
    ratio = np.nanmean(np.array(model["sigma"], float) / np.array(target["sigma"], float))
    print(f"σ model/truth {ratio:.2f}; pipeline {p.to_dict()}")
    if out_run.exists():
        shutil.rmtree(out_run)
    shutil.copytree(fit_run, out_run, ignore=shutil.ignore_patterns("pipe", "model"))
    save_pipeline(p, out_run / "camera_pipeline.json", source="oracle: fitted to the true noise statistics")


if __name__ == "__main__":
    main()
