"""How a fit run splits the residual y − μ between Σμ and Σn, per clean intensity (HG noise by default).

    python benchmarks/sigma_split.py cbsd68-hg-small-held cbsd68-hg-small-held-b20c80 --limit 8

For each pixel and channel of the first N noisy test images (CBSD68, seed 0) whose clean value lies within
±0.025 of a level x, as standard deviations (0–255): Σn and Σμ as the run predicts them on those images, their
sum, the residual E(y−μ)² they should add up to, and — measurement only, from the clean images fit never
sees — D-BSN's true error E(x−μ)² and the noise actually present E(y−x)² (after clipping and 8-bit
rounding). "report" is the noise report's σ at x (CNNest on a flat gray image), the curve fit_quality judges.
Writes benchmarks/results/sigma_split.{md,json}, keeping earlier rows of other runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, FIT_RUNS, RESULTS, merge_rows, write_table  # noqa: E402
from denoise_cli.evaluation.scoring import synthetic_pairs  # noqa: E402
from denoise_cli.training.likelihood import covariance  # noqa: E402
from denoise_cli.training.noise_report import build_report  # noqa: E402
from denoise_cli.training.runs import Run  # noqa: E402
from denoise_cli.training.fit import load_stage1  # noqa: E402

FIELDS = ("sigma_n", "sigma_mu", "total", "residual", "true_mu_error", "true_noise")


@torch.no_grad()
def split(run: Run, noise: str, levels: list[float], limit: int) -> list[dict]:
    """One row per level: the quantities above, as σ on the 0–255 scale."""
    stage = load_stage1(run)
    stage.dbsn.eval()
    stage.noise.eval()
    cols = []
    for _, clean, noisy in synthetic_pairs(DATA / "test" / "CBSD68", noise, 0, limit):
        y, x = (torch.from_numpy(a.transpose(2, 0, 1))[None] for a in (noisy, clean))
        mu, l_mu = stage.dbsn(y)
        var_n, var_mu = (covariance(t).diagonal(dim1=-2, dim2=-1)[0].permute(2, 0, 1)
                         for t in (stage.noise(y, 0), l_mu))
        cols.append(np.stack([t.numpy().ravel() for t in (x[0], var_n, var_mu, (y - mu)[0] ** 2, (x - mu)[0] ** 2,
                                                          (y - x)[0] ** 2)]))
    x, var_n, var_mu, res, err, nse = np.concatenate(cols, axis=1)
    report = build_report(stage.noise, torch.device("cpu"))
    curve = np.mean(np.array(next(iter(report["sigma"].values()))), axis=0)
    rows = []
    for level in levels:
        sel = np.abs(x - level) < 0.025
        values = [v[sel].mean() for v in (var_n, var_mu, var_n + var_mu, res, err, nse)]
        rows.append({"row": f"{run.path.name}@{level:g}", "run": run.path.name, "level": level, "images": limit,
                     "noise": noise,
                     "report": float(np.interp(level, report["levels"], curve)),
                     **{k: float(np.sqrt(v)) * 255 for k, v in zip(FIELDS, values)}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="colour fit run names under runs/fit_quality")
    ap.add_argument("--noise", default="hg:40,10", help="the noise the run was fitted on")
    ap.add_argument("--levels", type=float, nargs="+", default=[0.2, 0.5, 0.8])
    ap.add_argument("--limit", type=int, default=8, help="first N test images")
    args = ap.parse_args()
    new = [r for name in args.runs for r in split(Run(FIT_RUNS / name), args.noise, args.levels, args.limit)]
    rows = merge_rows(RESULTS / "sigma_split.json", new, key="row")  # one row per run and level
    lines = ["Σμ / Σn split per clean intensity (CBSD68, first N images, seed 0; σ on the 0–255 scale)", "",
             "| fit run | noise (N) | x | Σn | Σμ | Σn+Σμ | E(y−μ)² | true E(x−μ)² | true noise E(y−x)² | report σ(x) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['run']} | {r['noise']} ({r['images']}) | {r['level']:.2f} | "
              + " | ".join(f"{r[k]:.1f}" for k in (*FIELDS, "report")) + " |" for r in rows]
    write_table("sigma_split", rows, lines)


if __name__ == "__main__":
    main()
