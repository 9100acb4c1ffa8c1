"""Where fit's AWGN σ over-estimate comes from: the noise model absorbs D-BSN's own error.

    python benchmarks/sigma_bias.py bsd68-awgn25-small-held cbsd68-awgn25-small-held --limit 8

For a fit run from fit_quality.py (AWGN σ=25, seed 0; BSD68 for a gray run, CBSD68 for a colour one),
per pixel and channel, averaged (0–255² units):
E[(y−μ)²], D-BSN's predicted Σμ, the noise model's Σn, and — measurement only, from the clean
images fit never sees — the true E[(x−μ)²] and the true noise variance after 8-bit clipping.
Eq. 8 (½ r/(Σμ+Σn) + ½ log Σn + ½ Σμ/Σn for a residual r) is minimised at Σμ = 0, Σn = r where
r is uniform, so Σn ≈ σ² + E[(x−μ)²] − Σμ: a better D-BSN is what brings σ down to the truth.
Writes benchmarks/results/sigma_bias.{md,json}, keeping earlier rows of other runs.
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
from denoise_cli.training.runs import Run  # noqa: E402
from denoise_cli.training.fit import load_stage1  # noqa: E402


def _mean_diagonal(cov: torch.Tensor) -> float:
    """Mean per-channel variance of (N,H,W,C,C) covariances."""
    return cov.diagonal(dim1=-2, dim2=-1).mean().item()


@torch.no_grad()
def decompose(run: Run, limit: int) -> dict:
    stage = load_stage1(run)
    stage.dbsn.eval()
    stage.noise.eval()
    acc = []
    test_set = "BSD68" if stage.cfg.channels == 1 else "CBSD68"
    for _, clean, noisy in synthetic_pairs(DATA / "test" / test_set, "awgn:25", 0, limit):
        y = torch.from_numpy(noisy.transpose(2, 0, 1))[None]
        x = torch.from_numpy(clean.transpose(2, 0, 1))[None]
        mu, l_mu = stage.dbsn(y)
        acc.append([((y - mu) ** 2).mean().item(), _mean_diagonal(covariance(l_mu)),
                    _mean_diagonal(covariance(stage.noise(y, 0))), ((x - mu) ** 2).mean().item(),
                    ((y - x) ** 2).mean().item()])
    r, s_mu, s_n, err, noise = (float(v) * 255**2 for v in np.mean(acc, axis=0))
    return {"run": run.path.name, "set": test_set, "images": len(acc), "residual": r, "sigma_mu": s_mu, "sigma_n": s_n,
            "true_mu_error": err, "true_noise_var": noise, "learned_sigma": s_n**0.5, "true_sigma": noise**0.5}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="fit run names under runs/fit_quality (BSD68 or CBSD68 σ=25 cases)")
    ap.add_argument("--limit", type=int, default=8, help="first N test images")
    args = ap.parse_args()
    rows = merge_rows(RESULTS / "sigma_bias.json", [decompose(Run(FIT_RUNS / name), args.limit) for name in args.runs],
                      key="run")
    lines = ["Noise-model bias on AWGN σ=25 (first N images, seed 0; per pixel and channel, 8-bit² units)", "",
             "| fit run | set (N) | E(y−μ)² | Σμ (predicted) | Σn (learned) | σ learned | true E(x−μ)² | true noise var (σ) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['run']} | {r.get('set', 'BSD68')} ({r['images']}) | {r['residual']:.0f} | {r['sigma_mu']:.0f} | "
              f"{r['sigma_n']:.0f} | {r['learned_sigma']:.2f} | "
              f"{r['true_mu_error']:.0f} | {r['true_noise_var']:.0f} ({r['true_sigma']:.2f}) |" for r in rows]
    write_table("sigma_bias", rows, lines)


if __name__ == "__main__":
    main()
