"""Side-by-side crops for the README: noisy | stage 1 (fit run) | the default `denoise` weights.

    python benchmarks/side_by_side.py ../shared/data/real-noisy/DND-patches/01_noise.png runs/dnd-real
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from denoise_cli.api import load_denoiser
from denoise_cli.io import read_image

OUT = Path(__file__).resolve().parent / "results"


def main(noisy_path: str, run: str, crop: int = 256) -> Path:
    noisy = read_image(noisy_path).pixels
    stage1 = read_image(Path(run) / "denoised" / f"{Path(noisy_path).stem}.png").pixels
    default = load_denoiser(None, device="cpu")(noisy)
    h, w = noisy.shape[:2]
    y0, x0 = (h - crop) // 2, (w - crop) // 2
    panels = [("noisy", noisy), ("stage 1 (fit, 6 min CPU)", stage1), ("default weights (bootstrap)", default)]
    tiles = []
    for label, img in panels:
        tile = Image.fromarray(np.round(np.clip(img[y0:y0 + crop, x0:x0 + crop], 0, 1) * 255).astype(np.uint8))
        ImageDraw.Draw(tile).text((6, 4), label, fill="white")
        tiles.append(tile)
    sheet = Image.new("RGB", (crop * len(tiles) + 4 * (len(tiles) - 1), crop), "white")
    for i, t in enumerate(tiles):
        sheet.paste(t, (i * (crop + 4), 0))
    OUT.mkdir(exist_ok=True)
    path = OUT / f"side_by_side_{Path(noisy_path).stem}.jpg"
    sheet.save(path, quality=92)
    return path


if __name__ == "__main__":
    print(main(*sys.argv[1:3]))
