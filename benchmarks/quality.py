"""Quality table: every checkpoint in weights.toml next to BM3D/CBM3D, on the shared test sets.

    python benchmarks/quality.py --quick     # 3 images per set, σ=25 only (minutes; for CI smoke)
    python benchmarks/quality.py             # BSD68, CBSD68, Set12 × AWGN 15/25/50, HG 40,10, MG 75

Same protocol as `denoise-cli eval` (8-bit noisy inputs, fixed seed, PSNR on 0–255, no crop).
Writes benchmarks/results/quality{,-quick}.{md,json} and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from denoise_cli.api import load_denoiser
from denoise_cli.evaluate import classical, evaluate, summarize, synthetic_pairs
from denoise_cli.noise import parse_spec
from denoise_cli.weights import load_registry

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "test"
OUT = ROOT / "benchmarks" / "results"
SETS = {"BSD68": 1, "CBSD68": 3, "Set12": 1}
NOISES = ["awgn:15", "awgn:25", "awgn:50", "hg:40,10", "mg:75"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 images per set, awgn:25 only")
    ap.add_argument("--sets", nargs="*", default=list(SETS))
    ap.add_argument("--noises", nargs="*", default=None)
    ap.add_argument("--limit", type=int, default=None, help="images per set")
    ap.add_argument("--no-bm3d", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    limit = 3 if args.quick and args.limit is None else args.limit
    noises = args.noises or (["awgn:25"] if args.quick else NOISES)

    methods = {name: load_denoiser(name, device="auto") for name in load_registry().entries}
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
