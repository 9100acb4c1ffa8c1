"""Control for the RAW path: on the Bayer planes themselves (no development), how far is the RAW model — blind and
given the true (a, b) — from GAT + BM3D with the true (a, b)? PSNR of the canonical planes (linear, and on a 1/2.2
gamma), mean over benchmarks.raw_scenes' first 6 scenes at its low and mid levels.

    python experiments/raw_planes_probe.py [RAW_WEIGHTS]
"""

from __future__ import annotations

import sys

import bm3d
import numpy as np

from benchmarks.raw_scenes import DATA, LEVELS, scene
from denoise_cli.api import load_raw_denoiser
from denoise_cli.io import list_images, read_image
from denoise_cli.io.bayer import open_raw, read_planes
from denoise_cli.noise import anscombe
from denoise_cli.noise.sensor import SensorNoise, to_canonical


def planes(data: bytes) -> np.ndarray:
    with open_raw(data) as raw:
        frame = read_planes(raw)
        return to_canonical(frame.planes, frame.cfa).astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


def gamma(v: np.ndarray) -> np.ndarray:
    return np.clip(v, 0, 1) ** (1 / 2.2)


def main() -> None:
    model = load_raw_denoiser(sys.argv[1] if len(sys.argv) > 1 else None, device="cpu", precision="fp32")
    for level in ("low", "mid"):
        a, b = LEVELS[level]
        rows = []
        for i, f in enumerate(list_images(DATA)[:6]):
            noisy, clean = scene(read_image(f).pixels, a, b, np.random.default_rng([0, i]))
            y, x = planes(noisy), planes(clean)
            blind = model.planes(y.astype(np.float32)).astype(np.float64)
            true = model.planes(y.astype(np.float32), SensorNoise.uniform(a, b)).astype(np.float64)
            bm = np.stack([anscombe.inverse(bm3d.bm3d(anscombe.forward(y[..., c], a, b), sigma_psd=1.0), a, b)
                           for c in range(4)], -1)
            rows.append([psnr(y, x), psnr(blind, x), psnr(true, x), psnr(bm, x),
                         psnr(gamma(y), gamma(x)), psnr(gamma(true), gamma(x)), psnr(gamma(bm), gamma(x))])
        m = np.round(np.mean(rows, 0), 2)
        print(f"{level}: linear noisy / blind / true (a, b) / GAT+BM3D {m[0]} / {m[1]} / {m[2]} / {m[3]}; "
              f"gamma noisy / true / GAT+BM3D {m[4]} / {m[5]} / {m[6]}")


if __name__ == "__main__":
    main()
