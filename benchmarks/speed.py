"""Speed and memory of `denoise`: MP/s at 512² (embedded model vs CBM3D), peak RSS at 24 MP.

    python -m benchmarks.speed            # writes benchmarks/results/speed.{md,json} and prints the table
    python -m benchmarks.speed --no-bm3d  # skip the slow classical anchor

Numbers are medians of repeated runs after a warm-up, on whatever machine runs this; the
table names it. On a CUDA machine the GPU rows (fp32 and fp16) are added.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from denoise_cli.api import load_denoiser

OUT = Path(__file__).resolve().parent / "results"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def test_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / w, y / h, 0.5 + 0.3 * np.sin(x / 17) * np.cos(y / 23)], axis=2)
    noise = np.random.default_rng(seed).normal(0, 25 / 255, base.shape)
    return np.clip(base + noise, 0, 1).astype(np.float32)


def peak_rss_denoise(megapixels: float) -> tuple[float, float]:
    """Peak RSS (GiB) and wall time of the real CLI denoising a generated image of that size.

    Linux keeps a process's peak RSS across fork and exec, so a child of a big parent would
    report the parent's peak: the image is made in its own subprocess and this runs first.
    """
    w = int((megapixels * 1e6 * 1.5) ** 0.5)
    h = int(megapixels * 1e6 / w)
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "big.png"
        make = ("import sys; from benchmarks.speed import test_image; from denoise_cli.io import Photo, write_image; "
                f"write_image(Photo(test_image({h}, {w})), sys.argv[1])")
        subprocess.run([sys.executable, "-c", make, str(src)], check=True, cwd=Path(__file__).resolve().parents[1])
        t = time.perf_counter()
        code = ("import resource, sys; from denoise_cli.cli import app\n"
                "try: app(['denoise', sys.argv[1], '-q', '--device', 'cpu'])\n"
                "except SystemExit as e: assert e.code == 0, e.code\n"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        r = subprocess.run([sys.executable, "-c", code, str(src)], capture_output=True, text=True, check=True)
        return int(r.stdout.split()[-1]) / 2**20, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--big-mp", type=float, default=24.0, help="peak-RSS image size; 0 skips that measurement")
    ap.add_argument("--no-bm3d", action="store_true")
    ap.add_argument("--name", default="speed", help="results/NAME.{md,json} (e.g. speed-h100 for a GPU machine's run)")
    args = ap.parse_args()

    rss, wall = peak_rss_denoise(args.big_mp) if args.big_mp > 0 else (None, None)  # first, while this process is small
    img = test_image(args.size, args.size)
    mp = args.size**2 / 1e6
    rows = []
    den = load_denoiser(None, device="cpu")
    rows.append({"method": "denoise-cli default (MWCNN small)", "device": "cpu fp32",
                 "seconds": timed(lambda: den(img), args.repeats)})
    if torch.cuda.is_available():
        for prec in ("fp32", "fp16"):
            g = load_denoiser(None, device="cuda", precision=prec)
            big = test_image(2048, 2048)

            def run() -> None:
                g(big)
                torch.cuda.synchronize()
            rows.append({"method": "denoise-cli default (MWCNN small)", "device": f"cuda {prec} (2048²)",
                         "seconds": timed(run, args.repeats) * mp / (2048**2 / 1e6)})
    if not args.no_bm3d:
        import bm3d

        rows.append({"method": "CBM3D (bm3d package, σ=25)", "device": "cpu",
                     "seconds": timed(lambda: bm3d.bm3d_rgb(img, 25 / 255), 1)})
    for r in rows:
        r["mp_per_s"] = mp / r["seconds"]
    result = {"machine": machine(), "image": f"{args.size}×{args.size} RGB", "rows": rows,
              "peak_rss": {"megapixels": args.big_mp, "gib": rss, "seconds": wall, "goal_gib": 2.0}}
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    lines = [f"Speed on {result['machine']} — {result['image']}, median of {args.repeats} after warm-up", "",
             "| method | device | s / image | MP/s |", "|---|---|---:|---:|"]
    lines += [f"| {r['method']} | {r['device']} | {r['seconds']:.3f} | {r['mp_per_s']:.2f} |" for r in rows]
    if rss is not None:
        lines += ["", f"Peak RSS of `denoise-cli denoise` on a {args.big_mp:g}-megapixel RGB PNG (CPU, auto tiling): "
                      f"**{rss:.2f} GiB** (goal < 2 GiB), {wall:.0f} s end to end including PNG read/write."]
    (OUT / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
