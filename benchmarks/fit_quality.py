"""Stage-1 (`fit`) quality: D-BSN + noise model trained on noisy test images alone, next to
BM3D/CBM3D on the very same noisy files, plus how well the noise model recovered σ(x).

    python benchmarks/fit_quality.py --budget 30m                 # all three cases (hours on a CPU)
    python benchmarks/fit_quality.py --cases bsd68-awgn25 --budget 10m --limit 12

Clean images are used only to make the noisy inputs and to score the outputs; fit never sees
them (no early stopping, no checkpoint choice). Writes benchmarks/results/fit_quality.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CASES, DATA, FIT_RUNS, RESULTS, classical_scores, hardware, merge_rows, row_name, score_saved  # noqa: E402
from denoise_cli.evaluate import synthetic_pairs
from denoise_cli.inference import pick_device
from denoise_cli.io import Photo, write_image
from denoise_cli.noise import parse_spec
from denoise_cli.runs import Budget, Run, parse_duration
from denoise_cli.stages.fit import FitConfig, auto_noise_cov, fit


def true_sigma(spec: str, levels: np.ndarray) -> np.ndarray:
    s = parse_spec(spec)
    if s.kind == "awgn":
        return np.full_like(levels, s.params[0])
    alpha, delta = s.params
    return np.sqrt(alpha**2 * levels + delta**2)


def sigma_range(report: dict) -> list[float]:
    """Lowest and highest learned σ over every channel, group and intensity of a noise report."""
    values = np.array([c for curves in report["sigma"].values() for c in curves])
    return [float(values.min()), float(values.max())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--budget", default="30m")
    ap.add_argument("--limit", type=int, default=None, help="images per set (default: all)")
    ap.add_argument("--arch", default="small")
    ap.add_argument("--noise-cov", default="auto", choices=["auto", "full", "diagonal"],
                    help="auto = diagonal (synthetic mode), as `fit` chooses")
    ap.add_argument("--patch", type=int, default=FitConfig.patch, help="training patch side (paper: 96)")
    ap.add_argument("--batch", type=int, default=FitConfig.batch, help="patches per step")
    ap.add_argument("--ring-skip", action=argparse.BooleanOptionalAction, default=True,
                    help="D-BSN μ = neighbour mean + residual (--no-ring-skip: the paper's plain mean)")
    ap.add_argument("--suffix", default="", help="appended to run names and table cases (variants)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=Path, default=FIT_RUNS)
    args = ap.parse_args()
    device = pick_device(args.device)
    rows = []
    for name in args.cases:
        set_name, channels, noise, paper, _ = CASES[name]
        # the noisy inputs stay beside the run: distill (benchmarks/unpaired.py) trains on them too
        noisy_dir = args.runs / f"{name}-noisy"
        pairs = list(synthetic_pairs(DATA / "test" / set_name, noise, args.seed, args.limit))
        for img_name, _, noisy in pairs:
            write_image(Photo(noisy), noisy_dir / f"{Path(img_name).stem}.png", overwrite=True)
        run = Run(args.runs / f"{name}-{args.arch}{args.suffix}")
        cfg = FitConfig(mode="synthetic", channels=channels, arch=args.arch, seed=args.seed,
                        patch=args.patch, batch=args.batch, ring_skip=args.ring_skip,
                        noise_cov=auto_noise_cov("synthetic", args.noise_cov))
        start = time.perf_counter()
        budget = Budget(None, parse_duration(args.budget))
        report = fit(noisy_dir, run, None if run.exists() else cfg, budget, device)
        wall = time.perf_counter() - start
        ours = score_saved(pairs, run.path / "denoised")
        bm3d = classical_scores(set_name, noise, args.seed, args.limit)
        levels = np.array(report["levels"])
        learned = np.mean(np.array(next(iter(report["sigma"].values()))), axis=0)
        truth = true_sigma(noise, levels)
        mid = (levels >= 0.2) & (levels <= 0.8)
        rows.append({
            "case": row_name(name, args.arch, args.suffix), "arch": args.arch,
            "patch": cfg.patch, "batch": cfg.batch, "noise_cov": cfg.noise_cov, "set": set_name, "noise": noise,
            "images": len(pairs),
            "stage1_psnr": float(np.mean([r.psnr for r in ours])), "stage1_ssim": float(np.mean([r.ssim for r in ours])),
            "bm3d_psnr": bm3d["psnr"], "bm3d_ssim": bm3d["ssim"],
            "noisy_psnr": float(np.mean([r.noisy_psnr for r in ours])), "paper_dbsn": paper,
            "budget": args.budget, "wall_s": wall, "steps": budget.step,
            "hardware": hardware(device),
            "sigma_levels": levels.tolist(), "sigma_learned": learned.tolist(), "sigma_true": truth.tolist(),
            "sigma_max_rel_err_mid": float(np.max(np.abs(learned[mid] - truth[mid]) / truth[mid])),
            "sigma_range": sigma_range(report),
        })
        print(json.dumps({k: v for k, v in rows[-1].items() if not k.startswith("sigma_") or k.endswith("mid")}), flush=True)
    rows = merge_rows(RESULTS / "fit_quality.json", rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fit_quality.json").write_text(json.dumps({"rows": rows}, indent=2))
    (RESULTS / "fit_quality.md").write_text(render(rows, args.seed))
    print(render(rows, args.seed))


def render(rows: list[dict], seed: int) -> str:
    lines = [f"Stage 1 (fit): noisy inputs 8-bit, seed {seed}; fit sees only the noisy images", "",
             "| case | Σn | images | noisy | BM3D/CBM3D | stage 1 (ours) | paper D-BSN "
             "| σ(x) max rel. error, x∈[0.2,0.8] | σ learned, min–max | budget (steps) | wall | hardware |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r.get('noise_cov', 'full')} | {r['images']} | {r['noisy_psnr']:.2f} | "
                     f"{r['bm3d_psnr']:.2f} / {r['bm3d_ssim']:.3f} | "
                     f"{r['stage1_psnr']:.2f} / {r['stage1_ssim']:.3f} | {r['paper_dbsn']:.2f} | "
                     f"{100 * r['sigma_max_rel_err_mid']:.1f} % | {_range(r)} | {r['budget']} ({r.get('steps', '?')}) | "
                     f"{r['wall_s'] / 60:.0f} min | {r['hardware']} |")
    lines += ["", "Σn: `full` = 3×3 covariance with cross-channel terms, `diagonal` = per-channel variances (fit's "
              "default in synthetic mode since 2026-11-26); gray images have a 1×1 Σn either way. σ learned: the lowest "
              "and highest σ of the noise report over all channels and intensities 0–1 (not recorded before 2026-11-30)."]
    return "\n".join(lines) + "\n"


def _range(row: dict) -> str:
    return "—" if "sigma_range" not in row else f"{row['sigma_range'][0]:.1f}–{row['sigma_range'][1]:.1f}"


if __name__ == "__main__":
    main()
