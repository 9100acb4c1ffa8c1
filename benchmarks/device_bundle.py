"""Pack folders for the lent GPU machine, whose calls carry at most 64 MiB, and unpack them there.

    python -m benchmarks.device_bundle pack --to .gpu/bundle ../shared/data/train/color-photos runs/fit_quality/X
    python -m benchmarks.device_bundle unpack .gpu/bundle          # on the device, in the repo root

8-bit images are stored as lossless WebP (the colour photos: 48 → 36 MB) and written back as PNG with
the same pixels, mode and name; other files travel as they are. A manifest keeps each file's path as
given and a hash of its pixels (images) or bytes (the rest), and unpack checks every one, so the
device trains on exactly the data this machine has. Unpack recreates the paths as given, relative to
the directory it runs in (`../shared/data/...` lands where the benchmarks read it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from denoise_cli.registry.weights import sha256_file

LIMIT = 64 * 2**20  # what one device call can carry
WEBP_MODES = {"L", "RGB", "RGBA"}  # 8-bit modes lossless WebP round-trips (gray comes back as RGB: converted)
MANIFEST = "manifest.json"


def pixel_hash(image: Image.Image) -> str:
    """sha256 of an image's mode, size and pixels: equal for a PNG and its WebP copy."""
    return hashlib.sha256(f"{image.mode}{image.size}".encode() + np.asarray(image).tobytes()).hexdigest()


def _image(path: Path) -> Image.Image | None:
    """The file as an 8-bit image lossless WebP can hold, else None (copied as bytes)."""
    if path.suffix.lower() not in {".png", ".bmp", ".tif", ".tiff"}:
        return None
    try:
        image = Image.open(path)
        image.load()
    except OSError:
        return None
    return image if image.mode in WEBP_MODES else None


def pack(sources: list[str], to: Path) -> dict:
    """Write every file under ``sources`` into ``to`` (WebP or verbatim) with a manifest; return it."""
    if to.exists():
        shutil.rmtree(to)
    to.mkdir(parents=True)  # stored files sit flat in it, named by their index
    entries = []
    for src in sources:
        root = Path(src)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            target = str(path)  # as given, relative to where pack ran
            stored = Path(f"{len(entries):05d}")
            image = _image(path)
            if image is not None:
                stored = stored.with_suffix(".webp")
                image.save(to / stored, lossless=True, quality=100, method=4)
                entries.append({"path": target, "stored": str(stored), "mode": image.mode, "pixels": pixel_hash(image)})
            else:
                shutil.copyfile(path, to / stored)
                entries.append({"path": target, "stored": str(stored), "bytes": sha256_file(path)})
    manifest = {"files": entries}
    (to / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _restore(bundle: Path, root: Path, e: dict) -> None:
    dst = root / e["path"]
    dst.parent.mkdir(parents=True, exist_ok=True)
    src = bundle / e["stored"]
    if "pixels" in e:
        image = Image.open(src).convert(e["mode"])
        if pixel_hash(image) != e["pixels"]:
            raise ValueError(f"{e['path']}: pixels differ from the packed image")
        image.save(dst)
    else:
        shutil.copyfile(src, dst)
        if sha256_file(dst) != e["bytes"]:
            raise ValueError(f"{e['path']}: bytes differ from the packed file")


def unpack(bundle: Path, root: Path = Path(".")) -> int:
    """Recreate the bundle's files under ``root`` (paths joined as given), checking each hash; return the
    file count. Threads: Pillow's codecs release the GIL, and the device has 16 cores."""
    files = json.loads((bundle / MANIFEST).read_text())["files"]
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(lambda e: _restore(bundle, root, e), files))
    return len(files)


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="pack files and folders into a bundle folder")
    p.add_argument("sources", nargs="+")
    p.add_argument("--to", type=Path, required=True)
    u = sub.add_parser("unpack", help="recreate a bundle's files (paths as given to pack), checking hashes")
    u.add_argument("bundle", type=Path)
    u.add_argument("--root", type=Path, default=Path("."), help="joined to each path as given, ../ included")
    args = ap.parse_args()
    if args.command == "pack":
        before = sum(size(Path(s)) if Path(s).is_dir() else Path(s).stat().st_size for s in args.sources)
        n = len(pack(args.sources, args.to)["files"])
        after = size(args.to)
        print(f"{n} files, {before / 2**20:.1f} → {after / 2**20:.1f} MiB in {args.to}"
              + ("" if after <= LIMIT else f": over the {LIMIT // 2**20} MiB one device call carries"))
        sys.exit(0 if after <= LIMIT else 1)
    try:
        print(f"{unpack(args.bundle, args.root)} files unpacked and checked")
    except ValueError as e:
        sys.exit(f"device_bundle: {e}")


if __name__ == "__main__":
    main()
