"""What tiling costs: time and peak GPU memory of the default model per image size and tile setting.

    python -m benchmarks.tiling --name tiling-h200 --sizes 2048 4096 8192   # on a GPU machine: fp32 and fp16
    python -m benchmarks.tiling --device cpu --sizes 256 512 --tiles 128   # a dry run

For each square image size it runs the embedded default (MWCNN small) untiled, with the automatic
setting and with each fixed tile side, and times the host-side part alone (tiling with an identity
function), so one table shows whether the GPU or the cut-and-blend on the CPU sets the pace.
Writes benchmarks/results/NAME.{md,json} and prints the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .speed import machine, test_image, timed
from denoise_cli.api import load_denoiser
from denoise_cli.inference.devices import DEFAULT_OVERLAP, pick_device
from denoise_cli.inference.tiles import tiled

OUT = Path(__file__).resolve().parent / "results"


def measure(den, img, device: torch.device, repeats: int) -> tuple[float, float | None, np.ndarray | None]:
    """Median seconds per call, peak device memory (GiB; None off CUDA) and the output."""
    out = []

    def run() -> None:
        out[:] = [den(img)]
        if device.type == "cuda":
            torch.cuda.synchronize()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        s = timed(run, repeats)
    except torch.cuda.OutOfMemoryError:
        return float("nan"), None, None
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return s, peak, out[0]


def fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--tiles", type=int, nargs="+", default=[1024, 2048], help="fixed tile sides to try")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--name", default="tiling")
    args = ap.parse_args()
    device = pick_device(args.device)
    precisions = ("fp32", "fp16") if device.type == "cuda" else ("fp32",)
    rows = []
    for size in args.sizes:
        img = test_image(size, size)
        host = timed(lambda: tiled(lambda x: x.copy(), img, min(args.tiles), DEFAULT_OVERLAP), args.repeats)
        rows.append({"size": size, "precision": "-", "tile": f"host only (identity, tile {min(args.tiles)})",
                     "seconds": host, "peak_gib": None, "max_diff_levels": None})
        for prec in precisions:
            whole = None
            for tile in [0, None] + [t for t in args.tiles if t < size]:
                den = load_denoiser(None, device=str(device), precision=prec, tile=tile)
                s, peak, out = measure(den, img, device, args.repeats)
                whole = out if tile == 0 else whole
                diff = None if out is None or whole is None else float(np.abs(out - whole).max() * 255)
                rows.append({"size": size, "precision": prec, "tile": "auto" if tile is None else tile or "none",
                             "seconds": s, "peak_gib": peak, "max_diff_levels": diff})
                print(json.dumps(rows[-1]), flush=True)
    for r in rows:
        r["mp_per_s"] = r["size"] ** 2 / 1e6 / r["seconds"]
    result = {"machine": machine(), "device": str(device), "rows": rows}
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    lines = [f"Tiling on {result['machine']}, device {device} — default model, RGB, median of {args.repeats} after "
             "warm-up, host↔device copies included", "",
             "| size | precision | tile | s / image | MP/s | peak GPU memory (GiB) | max \\|Δ\\| vs whole (8-bit levels) |",
             "|---:|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['size']}² | {r['precision']} | {r['tile']} | {r['seconds']:.3f} | {r['mp_per_s']:.1f} | "
              f"{fmt(r['peak_gib'])} | {fmt(r['max_diff_levels'])} |" for r in rows]
    (OUT / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
