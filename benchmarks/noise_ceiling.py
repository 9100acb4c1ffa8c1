"""What CNNest can learn at best: the paper's noise model, reading the noisy value y, trained on the true noise.

    python benchmarks/noise_ceiling.py --noise hg:40,10 --steps 4000

A control for fit_quality's σ(x) criterion, never part of `fit`: it needs the clean images. CNNest (five
1×1 convs, diagonal Σn, the architecture `fit` trains) learns Σn(y) from the noise actually present,
n = y − x on the seeded 8-bit noisy CBSD68 images, by the Gaussian likelihood of n — no D-BSN, no Σμ,
nothing to share the residual with. Its noise report (CNNest on flat gray images, as fit_quality reads
it) shows how close a y-driven noise model can get to the formula σ(x): noisy values near x come from
clean values spread around it, and near white the clipped noise is smaller than the formula. Also
listed per level: the empirical σ of n given the noisy value (y within ±0.025; what an ideal
per-channel y-driven model predicts) and given the clean value (the noise present).
Writes benchmarks/results/noise_ceiling.{md,json} (HG) or noise_ceiling-NOISE.{md,json} (other noise), with
-SET appended for a set other than CBSD68 (`--set BSD68`: a gray CNNest).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, write_table  # noqa: E402
from fit_quality import effective_sigma, max_rel_err_mid, sigma_on_noisy, true_sigma  # noqa: E402
from denoise_cli.evaluation.scoring import synthetic_pairs  # noqa: E402
from denoise_cli.training.likelihood import constrained_nll, covariance  # noqa: E402
from denoise_cli.models.cnnest import NoiseModel  # noqa: E402
from denoise_cli.training.fit import blind_sigma  # noqa: E402


def pixels(noise: str, set_name: str, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Clean and noisy values of every pixel, (P, C) each, of the seeded noisy test set, and the blind
    σ estimate `fit` starts its noise model from."""
    pairs = [(clean, noisy) for _, clean, noisy in synthetic_pairs(DATA / "test" / set_name, noise, seed)]
    x, y = (np.concatenate([p[k].reshape(-1, p[k].shape[2]) for p in pairs]).astype(np.float32) for k in (0, 1))
    return x, y, blind_sigma([noisy for _, noisy in pairs], "synthetic")


def train(x: np.ndarray, y: np.ndarray, start_sigma: float, steps: int, batch: int, seed: int) -> NoiseModel:
    """CNNest fitted to n = y − x by −log N(n; 0, Σn(y)), started as `fit` starts it (blind σ)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = NoiseModel(x.shape[1], 1, diagonal=True)
    net.init_sigma(start_sigma)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for step in range(steps):
        if step == int(steps * 0.8):
            for g in opt.param_groups:
                g["lr"] = 1e-4
        idx = rng.integers(0, len(x), batch)
        yb, xb = (torch.from_numpy(v[idx]).T[None, :, :, None] for v in (y, x))  # (1, C, batch, 1): an image column
        sigma_n = covariance(net(yb, 0))
        # eq. 8 with Σμ = 0 is −log N(y − x; 0, Σn); divided by C, the mean per channel it was first written as
        loss = constrained_nll(yb, xb, torch.zeros_like(sigma_n), sigma_n) / x.shape[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noise", default="hg:40,10")
    ap.add_argument("--set", default="CBSD68")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=16384, help="pixels per step")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    x, y, start = pixels(args.noise, args.set, args.seed)
    net = train(x, y, start, args.steps, args.batch, args.seed)
    levels = np.linspace(0, 1, 21)
    net.eval()
    per_channel = net.sigma_curve(torch.tensor(levels, dtype=torch.float32)).numpy()  # (levels, C)
    report = per_channel.mean(1)
    on_noisy = sigma_on_noisy(net, args.noise, levels, seed=args.seed)
    spec, present = true_sigma(args.noise, levels), effective_sigma(args.noise, levels)
    rows = []
    for i, level in enumerate(levels):
        if not 0.1 - 1e-6 <= level <= 0.9 + 1e-6:
            continue
        by_y, by_x = (np.sqrt(((y - x) ** 2)[np.abs(v - level) < 0.025].mean()) * 255 for v in (y, x))
        by_y_channel = [float(np.sqrt(((y - x)[:, c] ** 2)[np.abs(y[:, c] - level) < 0.025].mean()) * 255)
                        for c in range(x.shape[1])]
        rows.append({"level": round(float(level), 2), "formula": float(spec[i]), "present": float(present[i]),
                     "given_x": float(by_x), "given_y": float(by_y), "given_y_channel": by_y_channel,
                     "cnnest_report": float(report[i]),
                     "cnnest_on_noisy": float(on_noisy[i])})
    summary = {"noise": args.noise, "set": args.set, "seed": args.seed, "steps": args.steps, "batch": args.batch,
               "err_vs_formula": max_rel_err_mid(levels, report, spec),
               "err_vs_present": max_rel_err_mid(levels, report, present),
               "on_noisy_err_vs_formula": max_rel_err_mid(levels, on_noisy, spec),
               "on_noisy_err_vs_present": max_rel_err_mid(levels, on_noisy, present),
               "report_range": [float(per_channel.min()), float(per_channel.max())]}
    lines = [f"CNNest trained on the true noise of {args.set} + {args.noise} (seed {args.seed}, 8-bit; {args.steps} steps "
             f"of {args.batch} pixels): the best a y-driven noise model reaches (σ, 0–255)", "",
             "| x | formula σ(x) | noise present | σ of n given clean x | σ of n given noisy y "
             "| same, per channel | CNNest report σ(x) | CNNest on noisy pixels |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['level']:.2f} | {r['formula']:.1f} | {r['present']:.1f} | {r['given_x']:.1f} | {r['given_y']:.1f} | "
              f"{' / '.join(f'{v:.1f}' for v in r['given_y_channel'])} | "
              f"{r['cnnest_report']:.1f} | {r['cnnest_on_noisy']:.1f} |" for r in rows]
    lines += ["", "Max rel. error over x ∈ [0.2, 0.8], against the formula / the noise present: CNNest report (flat gray "
              f"y = x) {summary['err_vs_formula'] * 100:.1f} % / {summary['err_vs_present'] * 100:.1f} %; CNNest on noisy "
              f"pixels (fit_quality's `sigma_on_noisy`) {summary['on_noisy_err_vs_formula'] * 100:.1f} % / "
              f"{summary['on_noisy_err_vs_present'] * 100:.1f} %. The report's σ over every channel and intensity "
              f"0–1 (fit_quality's 'σ learned, min–max'): {summary['report_range'][0]:.1f}–{summary['report_range'][1]:.1f}."]
    name = "noise_ceiling" if args.noise == "hg:40,10" else "noise_ceiling-" + args.noise.replace(":", "").replace(",", "-")
    if args.set != "CBSD68":
        name += "-" + args.set.lower()
    write_table(name, [summary, *rows], lines)


if __name__ == "__main__":
    main()
