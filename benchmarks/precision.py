"""What bf16 arithmetic costs in quality: the default models in fp32 and in bf16 on the same images, per test set.

    python -m benchmarks.precision            # CBSD68 σ25, BSD68 σ25 (the gray default), PolyU real pairs
    python -m benchmarks.precision --device cuda

bf16 is `denoise`'s automatic precision on CPUs with bf16 units only if it costs at most 0.02 dB on every set here.
Same protocol as `denoise-cli eval` (8-bit noisy inputs, seed 0, 8-bit outputs). Writes results/precision.{md,json}.
"""

from __future__ import annotations

import argparse
import json

from denoise_cli.api import load_denoiser
from denoise_cli.evaluation.scoring import evaluate, given_pairs, summarize, synthetic_pairs

from .common import DATA, RESULTS, hardware

MAX_COST_DB = 0.02
SETS = {  # name: (pairs, weights: None = the registry default for the images' channels)
    "CBSD68 awgn:25": lambda: synthetic_pairs(DATA / "test" / "CBSD68", "awgn:25", 0),
    "BSD68 awgn:25": lambda: synthetic_pairs(DATA / "test" / "BSD68", "awgn:25", 0),
    "PolyU (real)": lambda: given_pairs(DATA / "real-pairs" / "PolyU" / "noisy", DATA / "real-pairs" / "PolyU" / "clean"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    rows = []
    for name, pairs in SETS.items():
        scores = {}
        for precision in ("fp32", "bf16"):
            den = load_denoiser(None, device=args.device, precision=precision)
            scores[precision] = summarize(evaluate(pairs(), den))
        cost = scores["fp32"]["psnr"] - scores["bf16"]["psnr"]
        rows.append({"set": name, "fp32": scores["fp32"], "bf16": scores["bf16"], "cost_db": cost,
                     "speedup": scores["fp32"]["seconds"] / scores["bf16"]["seconds"]})
        print(f"{name:16} fp32 {scores['fp32']['psnr']:.3f}  bf16 {scores['bf16']['psnr']:.3f}  cost {cost:+.3f} dB",
              flush=True)
    ok = all(r["cost_db"] <= MAX_COST_DB for r in rows)
    lines = [f"The default models in fp32 and bf16 on {hardware(args.device)} (PSNR dB / SSIM; seconds for the whole set).",
             "", "| set | fp32 | bf16 | cost of bf16 | bf16 speed-up |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['set']} | {r['fp32']['psnr']:.3f} / {r['fp32']['ssim']:.4f} | {r['bf16']['psnr']:.3f} / "
              f"{r['bf16']['ssim']:.4f} | {r['cost_db']:+.3f} dB | {r['speedup']:.2f}× |" for r in rows]
    verdict = "meets" if ok else "misses"
    lines += ["", f"bf16 {verdict} the bar for the automatic CPU precision (≤ {MAX_COST_DB} dB on every set)."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "precision.json").write_text(json.dumps({"rows": rows, "meets_bar": ok}, indent=2))
    (RESULTS / "precision.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
