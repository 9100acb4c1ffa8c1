"""Side-by-side crops for the README: noisy | CBM3D | stage 1 (fit run) | distilled models.

    python -m benchmarks.side_by_side ../shared/data/real-noisy/DND-patches/01_noise.png \
        --fit runs/color-real --model runs/color-real/model --cbm3d
    python -m benchmarks.side_by_side ../shared/data/real-pairs/PolyU/noisy/NAME.jpg --cbm3d --cbm3d-sigma 16 \
        --model default= --model adapted=runs/real_cameras/SETTING/CAMERA/model \
        --reference ../shared/data/real-pairs/PolyU/clean/NAME.jpg

The stage-1 image is the fit run's own output (denoised/NAME.png). CBM3D gets a blind MAD σ
estimate, as a user without references would give it, unless --cbm3d-sigma names one. With a reference, each
label carries its PSNR and the reference is the last panel. Writes results/side_by_side_NAME.jpg.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from denoise_cli.api import load_denoiser
from denoise_cli.evaluation.metrics import psnr, to_255
from denoise_cli.evaluation.scoring import classical
from denoise_cli.io import read_image

from .real_cameras import cbm3d

OUT = Path(__file__).resolve().parent / "results"


def sheet(panels: list[tuple[str, np.ndarray]], crop: int) -> Image.Image:
    """Centre crops of equal-sized images, labelled, in one row."""
    h, w = panels[0][1].shape[:2]
    y0, x0 = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
    tiles = []
    for label, img in panels:
        c = np.clip(img[y0:y0 + crop, x0:x0 + crop], 0, 1)
        tile = Image.fromarray(np.round(c * 255).astype(np.uint8).squeeze())
        draw = ImageDraw.Draw(tile)
        draw.rectangle(draw.textbbox((6, 4), label), fill="black")  # readable on light and dark crops alike
        draw.text((6, 4), label, fill="white")
        tiles.append(tile)
    out = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), tiles[0].height), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + 4
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("noisy", type=Path)
    ap.add_argument("--fit", type=Path, help="fit run whose denoised/NAME.png is the stage-1 panel")
    ap.add_argument("--model", action="append", default=[], help="LABEL=WEIGHTS or WEIGHTS (repeatable)")
    ap.add_argument("--cbm3d", action="store_true", help="add a CBM3D panel (slow on a CPU)")
    ap.add_argument("--cbm3d-sigma", type=float, help="CBM3D's σ (0–255) instead of the blind estimate")
    ap.add_argument("--reference", type=Path, help="the clean reference: PSNR in each label, and a last panel")
    ap.add_argument("--crop", type=int, default=256)
    args = ap.parse_args()
    noisy = read_image(args.noisy).pixels
    panels = [("noisy", noisy)]
    if args.cbm3d:
        label = f"CBM3D sigma {args.cbm3d_sigma:g}" if args.cbm3d_sigma else "CBM3D (blind sigma)"
        panels.append((label, (cbm3d(args.cbm3d_sigma) if args.cbm3d_sigma else classical("bm3d", None))(noisy)))
    if args.fit:
        found = sorted((args.fit / "denoised").glob(f"*{args.noisy.stem}.png"))  # fit folders may prefix names
        if not found:
            raise SystemExit(f"{args.fit}/denoised has no output for {args.noisy.name}")
        panels.append(("stage 1 (D-BSN)", read_image(found[0]).pixels))
    for spec in args.model:
        label, _, weights = spec.rpartition("=")
        panels.append((label or Path(weights).name, load_denoiser(weights or None, device="cpu", precision="fp32")(noisy)))
    if args.reference:
        ref = read_image(args.reference).pixels
        panels = [(f"{label} {psnr(to_255(ref), to_255(img)):.2f} dB", img) for label, img in panels]
        panels.append(("reference", ref))
    OUT.mkdir(exist_ok=True)
    path = OUT / f"side_by_side_{args.noisy.stem}.jpg"
    sheet(panels, args.crop).save(path, quality=92)
    print(path)


if __name__ == "__main__":
    main()
