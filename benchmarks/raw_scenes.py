"""Camera RAW with known truth: synthetic RAW scenes at four noise levels, today's path, the classical RAW-domain
baseline and the RAW path side by side.

    python -m benchmarks.raw_scenes                  # 6 CBSD68 scenes × 4 levels
    python -m benchmarks.raw_scenes --images 2       # a quick look
    python -m benchmarks.raw_scenes --raw-weights FILE --adapted outside=FILE   # another RAW model; an adapted one
    python -m benchmarks.raw_scenes --levels outside --adapted outside=FILE     # one level again, the others kept
    python -m benchmarks.raw_scenes --methods raw raw_true   # a new RAW default: its columns again, the rest kept

Each clean photo is taken back to linear light (sRGB curve undone), mosaicked (RGGB) and given Poisson–Gaussian
sensor noise of variance a·x + b (x in [0,1] of the white level), then stored as a 14-bit DNG (black 512, white
16383). The reference is the noise-free DNG developed the same way (rawpy, camera white balance, 16-bit sRGB, no
automatic brightness, so that developed files differ only in their sensor data).
Methods: the noisy DNG developed; today's `denoise` path with --no-raw-domain (develop, then the sRGB default model);
the classical RAW-domain baseline given the true (a, b), and with (a, b) estimated from the noisy file: generalized
Anscombe transform, BM3D on each Bayer plane, the closed-form unbiased inverse, then the same development; the RAW
path (`denoise` on the file: the RAW default on the Bayer planes, blind), the same model given the true (a, b), and a
model adapted to one level (`--adapted LEVEL=FILE`, given the noise it measured for the files' camera, as
`denoise` gives it). The "outside" level has a read noise beyond the RAW
default's prior. PSNR on 0–255 after a per-channel gain match. Writes results/raw_scenes.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from denoise_cli.api import load_denoiser, load_raw_denoiser
from denoise_cli.io import list_images, read_image
from denoise_cli.inference.raw import camera_key
from denoise_cli.io.bayer import develop, open_raw, put_planes, read_planes
from denoise_cli.io.camera import camera_from_raw
from denoise_cli.io.dng import dng_bytes
from denoise_cli.noise import anscombe
from denoise_cli.noise.levels import NoiseLevels, poisson_gaussian
from denoise_cli.noise.pipeline import mosaic, srgb_to_linear
from denoise_cli.noise.sensor import SensorNoise

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
DATA = ROOT.parent / "shared" / "data" / "test" / "CBSD68"
LEVELS = {"low": (1e-3, 2e-5), "mid": (4e-3, 2e-4), "high": (1.2e-2, 1e-3),  # (a, b) on [0,1] of the white level
          "outside": (4e-3, 3e-3)}  # log10 b = 1.5·log10 a + 1.1: more read noise than the sensor prior spans
BLACK, WHITE = 512, 16383
METHODS = ("noisy", "today", "classical", "classical_blind", "raw", "raw_estimated", "raw_true", "raw_adapted")


def scene(clean: np.ndarray, a: float, b: float, rng: np.random.Generator) -> tuple[bytes, bytes]:
    """(noisy DNG, noise-free DNG) of a clean sRGB photo."""
    h, w = clean.shape[0] // 2 * 2, clean.shape[1] // 2 * 2
    linear = mosaic(srgb_to_linear(clean[:h, :w]), "RGGB")
    noisy = linear + rng.standard_normal(linear.shape) * np.sqrt(a * linear + b)
    to_raw = lambda v: np.clip(np.round(v * (WHITE - BLACK) + BLACK), 0, WHITE).astype(np.uint16)  # noqa: E731
    return dng_bytes(to_raw(noisy), "RGGB", BLACK, WHITE), dng_bytes(to_raw(linear), "RGGB", BLACK, WHITE)


def developed(data: bytes) -> np.ndarray:
    with open_raw(data) as raw:
        return develop(raw, auto_bright=False).astype(np.float32) / 65535


def classical(data: bytes, a: float | None = None, b: float | None = None) -> np.ndarray:
    """GAT + BM3D per Bayer plane + the unbiased inverse, then developed; without (a, b) they are estimated from the
    noisy planes (noise.levels.poisson_gaussian), as a user without a noise profile would have them."""
    import bm3d

    with open_raw(data) as raw:
        frame = read_planes(raw)
        if a is None:
            a, b = poisson_gaussian(NoiseLevels.estimate([frame.planes]))
        for c in range(4):
            d = anscombe.forward(frame.planes[..., c].astype(np.float64), a, b)
            frame.planes[..., c] = anscombe.inverse(bm3d.bm3d(d, sigma_psd=1.0), a, b)
        put_planes(raw, frame)
        return develop(raw, auto_bright=False).astype(np.float32) / 65535


def psnr_matched(out: np.ndarray, ref: np.ndarray) -> float:
    """PSNR on 0–255 after scaling each channel of ``out`` by its least-squares gain onto ``ref``."""
    h, w = min(out.shape[0], ref.shape[0]), min(out.shape[1], ref.shape[1])
    o, r = out[:h, :w].astype(np.float64), ref[:h, :w].astype(np.float64)
    gain = (o * r).sum(axis=(0, 1)) / np.maximum((o * o).sum(axis=(0, 1)), 1e-12)
    mse = np.mean((np.clip(o * gain, 0, 1) - r) ** 2)
    return float(10 * np.log10(1 / max(mse, 1e-12)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--raw-weights", default=None, help="the RAW model [default: the registry's RAW default]")
    ap.add_argument("--adapted", action="append", default=[], metavar="LEVEL=FILE",
                    help="a RAW model adapted to one level's sensor, scored blind on that level")
    ap.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                    help="measure these columns; the others keep their saved values")
    args = ap.parse_args()
    files = list_images(DATA)[: args.images]
    model = load_denoiser(None, device="cpu", precision="fp32")
    raw_model = load_raw_denoiser(args.raw_weights, device="cpu", precision="fp32")
    adapted = {lv: load_raw_denoiser(f, device="cpu", precision="fp32")
               for lv, f in (x.split("=", 1) for x in args.adapted)}
    rows = []
    for level in args.levels:
        a, b = LEVELS[level]
        methods = [m for m in METHODS if m in args.methods and (m != "raw_adapted" or level in adapted)]
        scores: dict[str, list[float]] = {k: [] for k in methods}
        seconds: dict[str, float] = {k: 0.0 for k in scores}
        for i, f in enumerate(files):
            noisy, clean = scene(read_image(f).pixels, a, b, np.random.default_rng([args.seed, i]))
            ref = developed(clean)
            runs = {"noisy": lambda: developed(noisy),
                    "today": lambda: model(developed(noisy)),
                    "classical": lambda: classical(noisy, a, b),
                    "classical_blind": lambda: classical(noisy),
                    "raw": lambda: raw_model.develop_denoised(noisy, auto_bright=False) / 65535,
                    "raw_estimated": lambda: raw_model.develop_denoised(noisy, estimate=True,
                                                                        auto_bright=False) / 65535,
                    "raw_true": lambda: raw_model.develop_denoised(noisy, noise=SensorNoise.uniform(a, b),
                                                                   auto_bright=False) / 65535,
                    "raw_adapted": lambda: adapted[level].develop_denoised(  # as `denoise` runs it: the file's camera
                        noisy, camera_key(camera_from_raw(noisy)), auto_bright=False) / 65535}
            for method in methods:
                run = runs[method]
                t = time.perf_counter()
                out = run()
                seconds[method] += time.perf_counter() - t
                scores[method].append(psnr_matched(out, ref))
            print(level, f.name, {k: round(v[-1], 2) for k, v in scores.items()}, flush=True)
        rows.append({"level": level, "a": a, "b": b, "images": len(files),
                     **{k: float(np.mean(v)) for k, v in scores.items()},
                     "seconds": {k: v / len(files) for k, v in seconds.items()}})
    old = OUT / "raw_scenes.json"
    if (set(args.levels) != set(LEVELS) or set(args.methods) != set(METHODS)) and old.exists():
        saved = {r["level"]: r for r in json.loads(old.read_text())["rows"]}  # what was not re-measured is kept
        for r in rows:
            r.update({k: v for k, v in saved.get(r["level"], {}).items() if k in METHODS and k not in r})
            r["seconds"] = {**saved.get(r["level"], {}).get("seconds", {}), **r["seconds"]}
        kept = [r for lv, r in saved.items() if lv not in args.levels]
        rows = sorted(kept + rows, key=lambda r: list(LEVELS).index(r["level"]))
        args.adapted = sorted(set(args.adapted) | set(json.loads(old.read_text()).get("adapted", [])))
    names = {"noisy": "noisy", "today": "today's path (develop, then the sRGB default)",
             "classical": "GAT + BM3D per Bayer plane, true (a, b)",
             "classical_blind": "the same, (a, b) estimated from the file",
             "raw": "RAW path: RAW default, blind",
             "raw_estimated": "RAW default given (a, b) measured from the file", "raw_true": "RAW default given the true (a, b)",
             "raw_adapted": "RAW model adapted to the sensor (its measured noise)"}
    cols = [k for k in names if any(k in r for r in rows)]
    lines = ["Synthetic RAW scenes (CBSD68, 14-bit DNG, Poisson–Gaussian a·x + b); PSNR (dB) after a per-channel gain "
             f"match, mean over the scenes; RAW model {args.raw_weights or 'the registry default'}.", "",
             "| level (a, b) | " + " | ".join(names[k] for k in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for r in rows:
        lines.append(f"| {r['level']} ({r['a']:g}, {r['b']:g}) | " +
                     " | ".join(f"{r[k]:.2f}" if k in r else "–" for k in cols) + " |")
    OUT.mkdir(exist_ok=True)
    (OUT / "raw_scenes.json").write_text(json.dumps({"rows": rows, "seed": args.seed, "raw_weights": args.raw_weights,
                                                     "adapted": args.adapted}, indent=2))
    (OUT / "raw_scenes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
