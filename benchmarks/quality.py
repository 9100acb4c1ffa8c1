"""Quality table: every checkpoint in weights.toml next to BM3D/CBM3D, on the shared test sets.

    python -m benchmarks.quality --quick     # 3 images per set, σ=25 only (minutes; for CI smoke)
    python -m benchmarks.quality             # BSD68, CBSD68, Set12 × AWGN 15/25/50, HG 40,10, MG 75
    python -m benchmarks.quality --shipped   # each checkpoint on the cases weights.toml claims (README table)
    python -m benchmarks.quality --shipped --ensemble   # the same with `denoise --ensemble` (8 views averaged)
    python -m benchmarks.quality --shipped --models color-awgn25-small   # re-measure one checkpoint's rows

Same protocol as `denoise-cli eval` (8-bit noisy inputs, fixed seed, PSNR on 0–255, no crop).
Writes benchmarks/results/quality{,-quick,-shipped,-shipped-ensemble}.{md,json} and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from denoise_cli.api import load_denoiser
from denoise_cli.evaluation.scoring import (classical, evaluate, method_label, report_stem, summarize, synthetic_pairs,
                                  write_report)
from denoise_cli.noise.synthetic import parse_spec
from denoise_cli.registry.weights import load_registry

from .common import classical_scores, hardware, merge_rows

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "test"
OUT = ROOT / "benchmarks" / "results"
SETS = {"BSD68": 1, "CBSD68": 3, "Set12": 1}
NOISES = ["awgn:15", "awgn:25", "awgn:50", "hg:40,10", "mg:75"]
PAPER_UNPAIRED = {  # MWCNN(unpaired), Wu et al. 2020, Tables 1–2 (their protocol: float noise, best epoch)
    "BSD68/awgn:15": 31.82, "BSD68/awgn:25": 29.38, "BSD68/awgn:50": 26.51,
    "CBSD68/awgn:15": 34.02, "CBSD68/awgn:25": 31.40, "CBSD68/awgn:50": 28.25,
    "CBSD68/hg:40,10": 31.72, "CBSD68/mg:75": 26.81,
}


def shipped(args: argparse.Namespace) -> None:
    """Every registry checkpoint on the test cases its weights.toml entry claims, measured afresh,
    next to the cached BM3D/CBM3D score (`--run-bm3d` computes missing ones) and the paper, with a
    check that the number recorded in weights.toml is the one measured. With ``--ensemble`` each
    checkpoint runs as `denoise --ensemble` and the table shows the gain over the recorded single pass."""
    rows = []
    registry = load_registry().entries
    for name, entry in registry.items():
        if args.models and name not in args.models or entry.channels == 4:  # RAW models: benchmarks/raw_scenes
            continue
        den = load_denoiser(name, device="auto", precision="fp32", ensemble=args.ensemble)
        for case, recorded in entry.metrics.items():
            set_name, noise = case.split("/", 1)
            if noise == "real":  # real pairs (PolyU): benchmarks/real_cameras measures those
                continue
            folder = args.data / set_name
            found = list(evaluate(synthetic_pairs(folder, parse_spec(noise), args.seed), den))
            label = method_label(name, args.ensemble)
            write_report(found, {"method": label, "data": str(folder), "noise": noise, "seed": args.seed,
                                 "ensemble": args.ensemble}, OUT / "eval" / report_stem(set_name, noise, label))
            m = summarize(found)
            anchor = classical_scores(set_name, noise, args.seed, cached_only=not args.run_bm3d)
            recorded = recorded if isinstance(recorded, dict) else {}
            said, said_ens = recorded.get("psnr"), recorded.get("ensemble_psnr")
            check = said_ens if args.ensemble else said  # the number weights.toml records for this way of running
            ok = check is not None and abs(check - m["psnr"]) < 0.015
            rows.append({"checkpoint": name, "case": case, **m, "bm3d": anchor, "paper": PAPER_UNPAIRED.get(case),
                         "recorded_psnr": said, "recorded_ensemble_psnr": said_ens, "matches_weights_toml": ok,
                         "ensemble": args.ensemble})
            print(f"{name:24} {case:20} {m['psnr']:.2f} / {m['ssim']:.4f}"
                  + ("" if ok else f"  (weights.toml says {check})"), flush=True)
    hw = hardware("auto")
    name = "quality-shipped" + ("-ensemble" if args.ensemble else "")
    if args.models and (OUT / f"{name}.json").exists():  # keep the other checkpoints' rows, in registry order
        merged = merge_rows(OUT / f"{name}.json", rows, key=lambda r: (r["checkpoint"], r["case"]))
        order = list(registry)
        rows = sorted((r for r in merged if r["checkpoint"] in registry), key=lambda r: order.index(r["checkpoint"]))
    (OUT / f"{name}.json").write_text(json.dumps({"seed": args.seed, "hardware": hw, "rows": rows}, indent=2))
    lines = [f"Shipped checkpoints on the cases weights.toml lists; all images, seed {args.seed}, 8-bit noisy inputs"
             + (", each image denoised as the mean of its 8 rotated/mirrored views (`--ensemble`)" if args.ensemble else "")
             + ". BM3D/CBM3D on the same noisy files ('not run': 30–45 CPU minutes per colour row, `--run-bm3d`). "
             "Paper: MWCNN(unpaired), its own protocol.", "",
             "| checkpoint | test | noisy | " + ("single pass (weights.toml) | " if args.ensemble else "")
             + "ours PSNR / SSIM | BM3D/CBM3D | ours − BM3D | paper |",
             "|---|---|---:|" + ("---:|" if args.ensemble else "") + "---:|---:|---:|---:|"]
    for r in rows:
        b = r["bm3d"]
        single = f"{r['recorded_psnr']:.2f} ({r['psnr'] - r['recorded_psnr']:+.2f}) | " if args.ensemble else ""
        lines.append(f"| {r['checkpoint']} | {r['case']} | {r['noisy_psnr']:.2f} | {single}"
                     f"{r['psnr']:.2f} / {r['ssim']:.3f} | "
                     + (f"{b['psnr']:.2f} / {b['ssim']:.3f} | {r['psnr'] - b['psnr']:+.2f} | " if b else "not run | — | ")
                     + (f"{r['paper']:.2f} |" if r["paper"] else "— |"))
    if not all(r["matches_weights_toml"] for r in rows):
        lines += ["", "**weights.toml disagrees with these measurements:** "
                  + ", ".join(f"{r['checkpoint']} {r['case']}" for r in rows if not r["matches_weights_toml"])]
    (OUT / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 images per set, awgn:25 only")
    ap.add_argument("--sets", nargs="*", default=list(SETS))
    ap.add_argument("--noises", nargs="*", default=None)
    ap.add_argument("--limit", type=int, default=None, help="images per set")
    ap.add_argument("--no-bm3d", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--shipped", action="store_true", help="each checkpoint on the cases weights.toml claims")
    ap.add_argument("--ensemble", action="store_true", help="with --shipped: denoise with the 8-view self-ensemble")
    ap.add_argument("--run-bm3d", action="store_true", help="with --shipped: compute BM3D/CBM3D scores not cached")
    ap.add_argument("--models", nargs="+", default=None,
                    help="with --shipped: measure only these checkpoints, keeping the table's other rows")
    args = ap.parse_args()
    if args.shipped:
        return shipped(args)
    limit = 3 if args.quick and args.limit is None else args.limit
    noises = args.noises or (["awgn:25"] if args.quick else NOISES)

    methods = {name: load_denoiser(name, device="auto", precision="fp32")
               for name, entry in load_registry().entries.items() if entry.channels != 4}  # not the RAW models
    if not args.no_bm3d:
        methods["BM3D/CBM3D"] = None
    results = []
    for set_name in args.sets:
        folder = args.data / set_name
        if not folder.is_dir():
            print(f"skip {set_name}: {folder} not found")
            continue
        for noise in noises:
            spec = parse_spec(noise)
            if spec.kind in ("mg", "camera") and SETS.get(set_name) == 1:
                continue  # cross-channel noise needs colour images
            for label, den in methods.items():
                fn = den if den is not None else classical("bm3d", spec)
                t = time.perf_counter()
                m = summarize(evaluate(synthetic_pairs(folder, spec, args.seed, limit), fn))
                results.append({"set": set_name, "noise": noise, "method": label, **m,
                                "wall_s": time.perf_counter() - t})
                print(f"{set_name:7} {noise:9} {label:28} PSNR {m['psnr']:.2f}  SSIM {m['ssim']:.4f}  "
                      f"({m['images']} images)", flush=True)
    name = "quality-quick" if args.quick else "quality"
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({"seed": args.seed, "limit": limit, "rows": results}, indent=2))
    lines = [f"PSNR (dB) / SSIM, seed {args.seed}, noisy inputs clipped and rounded to 8 bits"
             + (f", first {limit} images per set" if limit else ", all images"), "",
             "| set | noise | " + " | ".join(methods) + " |", "|---|---|" + "---:|" * len(methods)]
    for set_name in args.sets:
        for noise in noises:
            cells = [next((f"{r['psnr']:.2f} / {r['ssim']:.3f}" for r in results
                           if r["set"] == set_name and r["noise"] == noise and r["method"] == m), None)
                     for m in methods]
            if any(cells):
                lines.append(f"| {set_name} | {noise} | " + " | ".join(c or "—" for c in cells) + " |")
    (OUT / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
