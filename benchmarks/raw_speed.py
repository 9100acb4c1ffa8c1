"""Speed and memory of `denoise` on camera RAW: a 24-megapixel 14-bit DNG, the RAW path (Bayer planes through the RAW
model, then developed) next to today's path (`--no-raw-domain`: developed, then the sRGB default).

    python -m benchmarks.raw_speed                  # 6000×4000 DNG, 3 runs each; results/raw_speed.{md,json}
    python -m benchmarks.raw_speed --size 3000x2000 # a smaller sensor

A fresh `denoise-cli denoise` process per run (start-up, decoding, denoising, developing, the 16-bit TIFF written);
MP/s counts sensor pixels; peak RSS read from the process itself. Medians; the table names the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.speed import ROOT, cli_run, machine, test_image
from denoise_cli.io.dng import dng_bytes
from denoise_cli.noise.pipeline import mosaic, srgb_to_linear

OUT = Path(__file__).resolve().parent / "results"


def write_dng(path: Path, h: int, w: int) -> None:
    """A smooth test scene as a noisy 14-bit RGGB DNG (black 512, white 16383), made in its own process: a child
    inherits its parent's peak memory across fork and exec, so this one must stay small for the RSS readings."""
    code = ("import sys, pathlib; from benchmarks.raw_speed import make_dng; "
            f"make_dng(pathlib.Path(sys.argv[1]), {h}, {w})")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=ROOT)


def make_dng(path: Path, h: int, w: int) -> None:
    lin = mosaic(srgb_to_linear(test_image(h, w)), "RGGB")
    noisy = lin + np.random.default_rng(0).standard_normal(lin.shape) * np.sqrt(4e-3 * lin + 2e-4)
    raw = np.clip(np.round(noisy * (16383 - 512) + 512), 0, 16383).astype(np.uint16)
    path.write_bytes(dng_bytes(raw, "RGGB", 512, 16383))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="6000x4000", help="sensor WIDTHxHEIGHT")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "shot.dng"
        write_dng(src, h, w)
        for name, extra in (("RAW path (`--raw-domain`: Bayer planes, then developed)", ["--raw-domain"]),
                            ("today's path (--no-raw-domain: developed, then the sRGB default)", ["--no-raw-domain"])):
            runs = [cli_run(["denoise", str(src), "-o", str(Path(d) / "out"), "--overwrite", "-q", *extra])
                    for _ in range(args.repeats)]
            wall = statistics.median(r[0] for r in runs)
            rows.append({"path": name, "seconds": wall, "mp_per_s": h * w / 1e6 / wall,
                         "rss_gib": max(r[1] for r in runs)})
            print(rows[-1], flush=True)
    lines = [f"`denoise` on a {w}×{h} ({h * w / 1e6:.0f} MP) 14-bit DNG, whole command in a fresh process, median of "
             f"{args.repeats}; {machine()}.", "",
             "| path | seconds | MP/s (sensor pixels) | peak memory (GiB) |", "|---|---:|---:|---:|"]
    lines += [f"| {r['path']} | {r['seconds']:.1f} | {r['mp_per_s']:.2f} | {r['rss_gib']:.2f} |" for r in rows]
    OUT.mkdir(exist_ok=True)
    (OUT / "raw_speed.json").write_text(json.dumps({"size": [w, h], "machine": machine(), "rows": rows}, indent=2))
    (OUT / "raw_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
