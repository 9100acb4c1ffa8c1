"""Unpaired learning end to end (fit → distill → eval), next to BM3D/CBM3D on the same noisy files.

    python -m benchmarks.fit_quality --budget 30m            # stage 1 on the noisy test images
    python -m benchmarks.unpaired --budget 20m               # stage 2 from those runs, then scores

For each case the fit run from fit_quality.py (trained on the seeded noisy test images alone) is
distilled into an MWCNN with the unrelated clean training images (gray Train400 or the colour
photos), then both stages are scored on the same noisy images, and their speed is measured on the
same image in one process. AWGN cases distil with the noise scaled by U(0, 2), which makes the
model blind for σ up to 50 (the shipped color-awgn / gray-awgn); HG keeps U(0.9, 1.1), the paper's
setting and `distill`'s default (`--noise-scale 0.9:1.1` gives that to AWGN cases too).
Writes benchmarks/results/unpaired.{md,json} and the metrics into each model's entry.toml.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .common import (CASES, DATA, FIT_RUNS, RESULTS, ROOT, classical_scores, hardware, merge_rows,
                    row_name, score_saved)
from denoise_cli.api import load_denoiser
from denoise_cli.evaluation.scoring import evaluate, summarize, synthetic_pairs
from denoise_cli.inference.devices import pick_device
from denoise_cli.training.runs import Budget, Run, parse_duration
from denoise_cli.training.distill import DistillConfig, distill, parse_noise_scale
from denoise_cli.training.run_config import DISTILL_V1
from denoise_cli.training.fit_run import FitRun
from denoise_cli.registry.entry import add_metrics

CLEAN = {1: DATA / "train" / "gray-Train400", 3: DATA / "train" / "color-photos"}


def best_time(fn, image: np.ndarray, repeats: int = 3) -> float:
    """Best of `repeats` wall times after one warm-up call (seconds)."""
    fn(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(image)
        times.append(time.perf_counter() - start)
    return min(times)


def final_record(run: Run) -> dict:
    """The last line of a run's metrics log (step and training seconds at the end)."""
    return run.records()[-1]


def seconds(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 0.1 else f"{s:.2f} s"


def scale_note(row: dict) -> str:
    """How an AWGN row's synthetic noise was scaled: blind over σ ≤ 50, or the paper's d ~ U(0.9, 1.1)."""
    if row["blind"]:
        return " (blind σ≤50)"
    lo, hi = row.get("noise_scale", (0.9, 1.1))
    return f" (non-blind, d~U({lo:g}, {hi:g}))" if row["noise"].startswith("awgn") else ""


def distill_note(row: dict) -> str:
    """Distill settings a row changed from the defaults of its time: patches (side × batch) and noise passes."""
    sizes = (row.get("patch", DistillConfig.patch), row.get("batch", DistillConfig.batch))
    note = f", patches {sizes[0]}×{sizes[1]}" if sizes != (DistillConfig.patch, DistillConfig.batch) else ""
    passes = row.get("noise_passes", DISTILL_V1["noise_passes"])
    return note + (f", {passes} noise passes" if passes != DISTILL_V1["noise_passes"] else "")


def render(rows: list[dict]) -> str:
    lines = ["Unpaired learning: fit on the seeded noisy test images only, distill with unrelated clean training "
             "images; PSNR / SSIM on 8-bit outputs, seed 0. Speed: one image, best of 3, same process.", "",
             "| case | Σn, λ | noisy | BM3D/CBM3D | stage 1 D-BSN | distilled MWCNN(unpaired) | paper D-BSN / MWCNN "
             "| fit, distill (steps) | stage 1 vs distilled speed | hardware |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        s = r["speed"]
        lines.append(
            f"| {r['case']}{scale_note(r)} | {r.get('noise_cov', 'full')}, "
            f"{r.get('stage1_weight', 0.1):g} | {r['noisy_psnr']:.2f} | "
            f"{r['bm3d_psnr']:.2f} / {r['bm3d_ssim']:.3f} | {r['stage1_psnr']:.2f} / {r['stage1_ssim']:.3f} | "
            f"**{r['distilled_psnr']:.2f}** / {r['distilled_ssim']:.3f} | {r['paper_dbsn']:.2f} / {r['paper_mwcnn']:.2f} | "
            f"{r['fit_minutes']:.0f} min ({r['fit_steps']}), {r['distill_minutes']:.0f} min ({r['distill_steps']})"
            f"{' from ' + r['init'] if r.get('init') else ''}{', bf16' if r.get('precision') == 'bf16' else ''}"
            f"{distill_note(r)} | "
            f"{seconds(s['stage1_s'])} vs {seconds(s['distilled_s'])} ({s['stage1_s'] / s['distilled_s']:.1f}×) | "
            f"{r['hardware']} |")
    lines += ["", "Σn: the fit's noise covariance (`full` 3×3 or `diagonal`; 1×1 for gray either way). "
              "λ: weight of the stage-1 pairs in the distill loss (paper 0.1). "
              "\"from X\": a fine-tune (`distill --init X`) whose steps add to those X was trained with. "
              "Noise passes: `distill --noise-passes` (1, the noise model read at the clean image, unless named)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--budget", default="20m", help="distill training time per case")
    ap.add_argument("--arch", default="small")
    ap.add_argument("--fit-arch", default="small")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="score only the first N test images (smoke runs)")
    ap.add_argument("--suffix", default="", help="variant: fit run CASE-ARCH+SUFFIX, rows named CASE+SUFFIX")
    ap.add_argument("--patch", type=int, default=DistillConfig.patch, help="training patch side")
    ap.add_argument("--batch", type=int, default=DistillConfig.batch, help="patches per step")
    ap.add_argument("--lr", type=float, default=None,
                    help="Adam learning rate (cosine decay); default: distill's own for the arch")
    ap.add_argument("--init", default=None, help="distill --init: start from these weights (a fine-tune)")
    ap.add_argument("--noise-scale", type=parse_noise_scale, default=None,
                    help="distill --noise-scale LO:HI; default 0:2 (blind) for AWGN cases, 0.9:1.1 otherwise")
    ap.add_argument("--noise-passes", type=int, default=DistillConfig.noise_passes,
                    help="distill --noise-passes: read the noise model N times, each at the previous noisy draw")
    ap.add_argument("--stage1-weight", type=float, default=0.1, help="λ of the stage-1 pairs (paper 0.1)")
    ap.add_argument("--precision", default="fp32", help="distill --precision: fp32 or bf16 (autocast)")
    ap.add_argument("--variant", default="", help="distill variant on the same fit run: appended to run and row names")
    ap.add_argument("--clean", nargs="+", type=Path, default=None,
                    help="distill's clean folder(s) [default: gray-Train400 for gray cases, color-photos for colour]")
    ap.add_argument("--fit-runs", type=Path, default=FIT_RUNS)
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "unpaired")
    args = ap.parse_args()
    device = pick_device(args.device)
    rows = []
    for name in args.cases:
        set_name, channels, noise, paper_dbsn, paper_mwcnn = CASES[name]
        fit_run = Run(args.fit_runs / f"{name}-{args.fit_arch}{args.suffix}")
        if not (fit_run.path / "noise_model.safetensors").exists():
            sys.exit(f"{fit_run.path}: no finished fit run; run benchmarks/fit_quality.py --cases {name} first")
        scale = args.noise_scale or ((0.0, 2.0) if noise.startswith("awgn") else (0.9, 1.1))
        blind = scale[0] == 0.0
        out = Run(args.runs / f"{name}-{args.arch}{args.suffix}{args.variant}")
        cfg = DistillConfig(fit_run=str(fit_run.path), clean_dir=args.clean or [CLEAN[channels]], arch=args.arch,
                            noise_scale=scale, lam=args.stage1_weight, seed=args.seed,
                            patch=args.patch, batch=args.batch, lr=args.lr, init=args.init,
                            noise_passes=args.noise_passes)
        budget = Budget(None, parse_duration(args.budget))
        start = time.perf_counter()
        model_path = distill(cfg, out, budget, device, precision=args.precision)
        distill_wall = time.perf_counter() - start

        pairs = list(synthetic_pairs(DATA / "test" / set_name, noise, args.seed, args.limit))
        denoiser = load_denoiser(model_path, device=str(device), precision="fp32")
        ours = summarize(evaluate(iter(pairs), denoiser))
        stage1 = summarize(score_saved(pairs, fit_run.path / "denoised"))
        anchor = classical_scores(set_name, noise, args.seed, args.limit)

        stage = FitRun(fit_run.path).stage1(device)
        image = pairs[0][2]
        speed = {"image": pairs[0][0], "shape": list(image.shape),
                 "stage1_s": best_time(stage.denoise, image), "distilled_s": best_time(denoiser, image)}
        fit_end, distill_end = final_record(fit_run), final_record(out)
        rows.append({
            "case": row_name(name, args.arch, args.suffix, args.variant), "stage1_weight": cfg.lam,
            "noise_cov": stage.cfg.noise_cov, "set": set_name, "noise": noise,
            "images": len(pairs), "noisy_psnr": ours["noisy_psnr"],
            "bm3d_psnr": anchor["psnr"], "bm3d_ssim": anchor["ssim"],
            "stage1_psnr": stage1["psnr"], "stage1_ssim": stage1["ssim"],
            "distilled_psnr": ours["psnr"], "distilled_ssim": ours["ssim"],
            "paper_dbsn": paper_dbsn, "paper_mwcnn": paper_mwcnn, "blind": blind, "noise_scale": list(scale),
            "fit_minutes": fit_end["elapsed"] / 60, "fit_steps": fit_end["step"],
            "distill_minutes": distill_end["elapsed"] / 60, "distill_steps": distill_end["step"],
            "distill_wall_s": distill_wall, "init": args.init, "precision": args.precision,
            "noise_passes": cfg.noise_passes, "patch": cfg.patch, "batch": cfg.batch,
            "hardware": hardware(device), "speed": speed, "model": str(model_path.relative_to(ROOT)),
        })
        add_metrics(out.path / "entry.toml", f"{set_name}/{noise}",
                    {"psnr": round(ours["psnr"], 2), "ssim": round(ours["ssim"], 4), "images": ours["images"], "seed": args.seed})
        print(json.dumps(rows[-1]), flush=True)

    rows = merge_rows(RESULTS / "unpaired.json", rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "unpaired.json").write_text(json.dumps({"rows": rows}, indent=2))
    (RESULTS / "unpaired.md").write_text(render(rows))
    print(render(rows))


if __name__ == "__main__":
    main()
