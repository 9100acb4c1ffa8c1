"""Speed and memory of `denoise`: the network alone next to the whole command, per image size and precision.

    python -m benchmarks.speed                 # 512² batches, 2048², 24 MP (8- and 16-bit), start-up; results/speed.md
    python -m benchmarks.speed --quick         # 512² and 2048² only
    python -m benchmarks.speed --bm3d          # also CBM3D on one 512² image, for scale

For each size and precision: forward-only MP/s (the network on tensors, tiled as `denoise` tiles), and end to end
(a fresh `denoise-cli denoise` process on PNG files: start-up, decoding, tiling, encoding, writing) with its peak RSS.
The overhead is the gap between the two; for 512² files the rate per file in a long batch is also given (the
difference between a 64-file and a 16-file batch, which cancels start-up). Start-up: `--help`, `weights list` and a
missing-file error, which answer without loading PyTorch. Numbers are medians after a warm-up; the table names the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the network alone runs as `denoise` runs it (cli/denoise.py)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from denoise_cli.api import load_denoiser  # noqa: E402
from denoise_cli.inference.devices import cpu_has_bf16  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


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


def write_png(path: Path, h: int, w: int, bits: int) -> None:
    """A test photo as an 8- or 16-bit PNG, made in its own process (so this one stays small for RSS readings)."""
    code = ("import sys; from benchmarks.speed import test_image; from denoise_cli.io import Photo, write_image; "
            f"write_image(Photo(test_image({h}, {w})), sys.argv[1]) if {bits} == 8 else "
            f"write_image(Photo(test_image({h}, {w}), 16), sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=ROOT)


def cli_run(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one `denoise-cli` process (the RSS read from the child itself)."""
    code = ("import resource, sys; from denoise_cli.cli import app\n"
            "try: app(sys.argv[1:])\n"
            "except SystemExit as e: assert e.code in (0, None, 1), e.code\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return time.perf_counter() - t, int(r.stderr.split()[-1]) / 2**20


def forward_mp_per_s(h: int, w: int, precision: str, repeats: int) -> float:
    """The network alone, tiled as `denoise` tiles, on a float image already in memory; small images are timed over
    enough passes (about 4 MP per timing) that the clock's noise does not matter."""
    den = load_denoiser(None, device="cpu", precision=precision)
    img = test_image(h, w)
    passes = max(1, round(4e6 / (h * w)))

    def run() -> None:
        for _ in range(passes):
            den(img)
    return passes * h * w / 1e6 / timed(run, repeats)


def end_to_end(h: int, w: int, files: int, bits: int, precision: str, repeats: int) -> dict:
    """A fresh `denoise` process on ``files`` PNGs of h×w: MP/s over the whole command and over denoising alone,
    and its peak RSS."""
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "in"
        src.mkdir()
        write_png(src / "p0.png", h, w, bits)
        for i in range(1, files):  # the same photo under other names: decoding and encoding cost the same
            shutil.copyfile(src / "p0.png", src / f"p{i}.png")
        walls, rss = [], 0.0
        for _ in range(repeats):
            wall, peak = cli_run(["denoise", str(src), "-o", str(Path(d) / "out"), "--overwrite", "-q", "--device",
                                  "cpu", "--precision", precision])
            walls.append(wall)
            rss = max(rss, peak)
    mp = h * w * files / 1e6
    return {"mp_per_s": mp / statistics.median(walls), "seconds": statistics.median(walls), "rss_gib": rss}


def startup(repeats: int) -> dict[str, float]:
    """Median wall seconds of commands that must answer without loading a model."""
    cases = {"denoise-cli --help": ["--help"], "denoise-cli weights list": ["weights", "list"],
             "denoise-cli denoise missing.png (error)": ["denoise", "/nonexistent/missing.png"]}
    out = {}
    for name, args in cases.items():
        out[name] = statistics.median(cli_run(args)[0] for _ in range(repeats))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="512² and 2048² only")
    ap.add_argument("--bm3d", action="store_true", help="also time CBM3D on one 512² image")
    ap.add_argument("--name", default="speed", help="results/NAME.{md,json}")
    args = ap.parse_args()

    precisions = ["fp32"] + (["bf16"] if cpu_has_bf16() else [])
    cases = [("512² × 16 files", 512, 512, 16, 8), ("512² × 64 files", 512, 512, 64, 8), ("2048²", 2048, 2048, 1, 8)]
    if not args.quick:
        cases += [("24 MP (6000×4000), 8-bit", 4000, 6000, 1, 8), ("24 MP (6000×4000), 16-bit", 4000, 6000, 1, 16)]
    rows = []
    for label, h, w, files, bits in cases:  # end-to-end first: this process stays small for the children's RSS
        for precision in precisions:
            rows.append({"case": label, "precision": precision,
                         **end_to_end(h, w, files, bits, precision, args.repeats)})
            print(rows[-1], flush=True)
    forward: dict[tuple[int, int, str], float] = {}  # one measurement per size and precision
    for row, (label, h, w, files, bits) in zip(rows, [c for c in cases for _ in precisions]):
        key = (h, w, row["precision"])
        if key not in forward:
            forward[key] = forward_mp_per_s(h, w, row["precision"], 1 if h * w > 4e6 else args.repeats)
        row["forward_mp_per_s"] = forward[key]
        row["share_of_forward"] = row["mp_per_s"] / row["forward_mp_per_s"]
    for precision in precisions:  # a long batch's rate per file: the 48 files that 64 has more than 16
        few, many = (next(r for r in rows if r["case"] == f"512² × {n} files" and r["precision"] == precision)
                     for n in (16, 64))
        many["per_file_mp_per_s"] = 48 * 512 * 512 / 1e6 / (many["seconds"] - few["seconds"])
        many["per_file_share"] = many["per_file_mp_per_s"] / many["forward_mp_per_s"]
    starts = startup(args.repeats)
    bm3d_seconds = None
    if args.bm3d:
        import bm3d

        img = test_image(512, 512)
        bm3d_seconds = timed(lambda: bm3d.bm3d_rgb(img, 25 / 255), 1)
    result = {"machine": machine(), "rows": rows, "startup_seconds": starts, "cbm3d_512_seconds": bm3d_seconds}
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    lines = [f"`denoise` on {result['machine']}; default colour model, automatic tiling.", "",
             "| photo | precision | network alone (MP/s) | whole command (MP/s) | share | wall (s) | peak RSS (GiB) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['case']} | {r['precision']} | {r['forward_mp_per_s']:.2f} | {r['mp_per_s']:.2f} | "
              f"{100 * r['share_of_forward']:.0f} % | {r['seconds']:.1f} | {r['rss_gib']:.2f} |" for r in rows]
    lines += ["", "In a long batch of 512² files (the 48 files that 64 has more than 16, so start-up cancels out): "
              + ", ".join(f"{r['precision']} {r['per_file_mp_per_s']:.2f} MP/s, {100 * r['per_file_share']:.0f} % of the "
                          "network alone" for r in rows if "per_file_mp_per_s" in r) + "."]
    lines += ["", "Whole command: a fresh process, start-up, PNG decoding and encoding included. Start-up alone: "
              + ", ".join(f"`{k}` {v:.2f} s" for k, v in starts.items()) + "."]
    if bm3d_seconds:
        lines += ["", f"CBM3D (bm3d package, σ 25) on one 512² image: {bm3d_seconds:.1f} s."]
    (OUT / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
