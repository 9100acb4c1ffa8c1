"""How much noise `distill` synthesises from a fit run, per number of noise passes, next to the true noise.

    python benchmarks/synth_sigma.py cbsd68-awgn25-small-s21=awgn:25 cbsd68-hg-small-smallmu=hg:40,10

For each RUN=NOISE (a fit run under runs/fit_quality, or a path): the std (0–255) of ỹ − x that distill's
`synthesize` draws on the first 12 clean colour training photos (top-left 512², pixels with 0.1 < x < 0.9, where
clipping is rare), for 1–4 passes (1 reads the noise model at the clean x, as the paper; k reads it at the previous
pass's noisy draw), and the std of the true NOISE on the same pixels after clipping and 8-bit rounding. The true
noise is for measuring only: distill never sees it. Writes benchmarks/results/synth_sigma.{md,json}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, FIT_RUNS, merge_rows, RESULTS, write_table  # noqa: E402
from denoise_cli.io import list_images, read_image, to_channels  # noqa: E402
from denoise_cli.evaluation.synthetic_noise import add_noise, parse_spec, quantize  # noqa: E402
from denoise_cli.training.runs import Run  # noqa: E402
from denoise_cli.training.distill import synthesize  # noqa: E402
from denoise_cli.training.fit import load_stage1  # noqa: E402

PASSES = (1, 2, 3, 4)


def clean_crops(n: int = 12, side: int = 512) -> list[np.ndarray]:
    """The first ``n`` colour training photos, top-left ``side``² (what distill draws its clean patches from)."""
    files = list_images(DATA / "train" / "color-photos")[:n]
    return [to_channels(read_image(f).pixels, 3)[:side, :side] for f in files]


def mid_std(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """std (0–255) of noisy − clean over the pixels whose clean value lies in (0.1, 0.9)."""
    d = np.concatenate([(y - x)[(x > 0.1) & (x < 0.9)] for x, y in pairs])
    return float(d.std() * 255)


@torch.no_grad()
def measure(run: Run, noise: str, crops: list[np.ndarray]) -> dict:
    """One row: synthesised σ per pass count and the true σ."""
    stage = load_stage1(run)
    row = {"run": run.path.name, "noise": noise, "mode": stage.cfg.mode}
    for k in PASSES:
        torch.manual_seed(0)
        pairs = []
        for x in crops:
            t = torch.from_numpy(x).permute(2, 0, 1)[None]
            pairs.append((x, synthesize(stage, t, passes=k)[0].permute(1, 2, 0).numpy()))
        row[f"passes_{k}"] = mid_std(pairs)
    rng = np.random.default_rng(0)
    row["true"] = mid_std([(x, quantize(add_noise(x, parse_spec(noise), rng))) for x in crops])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="RUN=NOISE: a fit run (name under runs/fit_quality, or a path) and its true noise")
    args = ap.parse_args()
    crops = clean_crops()
    rows = []
    for item in args.runs:
        name, _, noise = item.partition("=")
        path = Path(name) if Path(name).exists() else FIT_RUNS / name
        rows.append(measure(Run(path), noise, crops))
    rows = merge_rows(RESULTS / "synth_sigma.json", rows, key="run")
    lines = ["Noise `distill` synthesises on 12 clean colour training photos (σ of ỹ − x, 0–255, pixels with "
             "0.1 < x < 0.9), by noise passes, next to the true noise on the same pixels (measurement only)", "",
             "| fit run | mode | true noise | " + " | ".join(f"{k} pass{'es' if k > 1 else ''}" for k in PASSES) + " |",
             "|---|---|---|" + "---:|" * len(PASSES)]
    for r in rows:
        cells = " | ".join(f"{r[f'passes_{k}']:.2f} ({r[f'passes_{k}'] / r['true'] - 1:+.1%})" for k in PASSES)
        lines.append(f"| {r['run']} | {r['mode']} | {r['noise']}: {r['true']:.2f} | {cells} |")
    write_table("synth_sigma", rows, lines)


if __name__ == "__main__":
    main()
