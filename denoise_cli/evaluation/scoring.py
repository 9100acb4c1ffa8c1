"""Measure denoisers on clean test sets with seeded synthetic noise (or on given noisy/clean pairs).

Protocol: noisy inputs are the clean image plus noise, clipped and rounded to 8 bits, as a
user's saved file would be; outputs are rounded to 8 bits too; PSNR/SSIM on 0–255 over all
channels, no border crop. The same seed gives the same noisy images to every method.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import ConfigError, ImageError
from ..io import list_images, read_image, to_channels
from .metrics import estimate_sigma, psnr, ssim, to_255
from ..noise.synthetic import NoiseSpec, add_noise, image_rng, parse_spec, quantize

DenoiseFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Row:
    name: str
    psnr: float
    ssim: float
    noisy_psnr: float
    seconds: float
    megapixels: float


def synthetic_pairs(clean_dir: str | Path, spec: NoiseSpec | str, seed: int, limit: int | None = None
                    ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, clean, noisy 8-bit) for each image of a folder; noise fixed by (seed, name)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    for p in list_images(clean_dir)[:limit]:
        clean = quantize(read_image(p).pixels)
        yield p.name, clean, quantize(add_noise(clean, spec, image_rng(seed, p.name)))


def given_pairs(noisy_dir: str | Path, clean_dir: str | Path, limit: int | None = None
                ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, clean, noisy) matched by sorted order of two folders of equal size."""
    noisy, clean = list_images(noisy_dir)[:limit], list_images(clean_dir)[:limit]
    if len(noisy) != len(clean):
        raise ImageError(f"{noisy_dir} has {len(noisy)} images but {clean_dir} has {len(clean)}")
    for n, c in zip(noisy, clean):
        cl = read_image(c).pixels
        yield n.name, cl, to_channels(read_image(n).pixels, cl.shape[2])


def classical(method: str, spec: NoiseSpec | None) -> DenoiseFn:
    """Anchors: 'identity', 'nlm' (OpenCV) and 'bm3d' (BM3D gray / CBM3D color, bm3d package).

    BM3D gets the true σ for AWGN (the usual oracle setting) and a MAD estimate otherwise.
    """
    def sigma_of(noisy: np.ndarray) -> float:
        if spec is not None and spec.kind == "awgn" and len(spec.params) == 1:
            return spec.params[0]
        return float(np.mean([estimate_sigma(noisy[..., i]) for i in range(noisy.shape[2])]))

    if method == "identity":
        return lambda y: y
    if method == "bm3d":
        try:
            import bm3d
        except ImportError:
            raise ConfigError("the bm3d method needs the bm3d package: pip install 'denoise-cli[bm3d]'") from None

        def run_bm3d(y: np.ndarray) -> np.ndarray:
            s = sigma_of(y) / 255
            if y.shape[2] == 3:
                return np.asarray(bm3d.bm3d_rgb(y, s), np.float32)
            return np.asarray(bm3d.bm3d(y[..., 0], s), np.float32)[..., None]
        return run_bm3d
    if method == "nlm":
        import cv2

        def run_nlm(y: np.ndarray) -> np.ndarray:
            h = sigma_of(y) * 0.8
            u8 = np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)
            if y.shape[2] == 3:
                out = cv2.fastNlMeansDenoisingColored(u8, None, h, h, 7, 21)
            else:
                out = cv2.fastNlMeansDenoising(u8[..., 0], None, h, 7, 21)[..., None]
            return out.astype(np.float32) / 255
        return run_nlm
    raise ConfigError(f"unknown method {method!r}: use identity, nlm or bm3d")


def evaluate(pairs: Iterator[tuple[str, np.ndarray, np.ndarray]], denoise: DenoiseFn,
             on_row: Callable[[Row], None] | None = None) -> list[Row]:
    """Denoise each noisy image, round to 8 bits, and score against its clean image."""
    rows = []
    for name, clean, noisy in pairs:
        start = time.perf_counter()
        out = denoise(noisy)
        secs = time.perf_counter() - start
        c = to_255(clean)
        row = Row(name, psnr(c, to_255(out)), ssim(c, to_255(out)), psnr(c, to_255(noisy)), secs,
                  clean.shape[0] * clean.shape[1] / 1e6)
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def summarize(rows: list[Row]) -> dict:
    secs = sum(r.seconds for r in rows)
    return {"images": len(rows), "psnr": float(np.mean([r.psnr for r in rows])),
            "ssim": float(np.mean([r.ssim for r in rows])),
            "noisy_psnr": float(np.mean([r.noisy_psnr for r in rows])),
            "seconds": secs, "mp_per_s": sum(r.megapixels for r in rows) / secs if secs else 0.0}


def write_report(rows: list[Row], meta: dict, stem: Path) -> tuple[Path, Path]:
    """Write ``stem.json`` (meta, mean, per image) and ``stem.csv`` (per image)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    js, cs = stem.with_suffix(".json"), stem.with_suffix(".csv")
    js.write_text(json.dumps({**meta, "mean": summarize(rows), "images": [asdict(r) for r in rows]}, indent=2))
    with open(cs, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in rows)
    return js, cs


def method_label(weights: str, ensemble: bool = False) -> str:
    """How reports name a checkpoint's results; `--ensemble` ones get their own name so both can sit side by side."""
    return weights + ("-ensemble" if ensemble else "")


def report_stem(data_name: str, spec: str | None, label: str) -> str:
    """File stem of an eval report: SET_NOISE_METHOD, e.g. ``CBSD68_awgn-25_bm3d``."""
    return f"{data_name}_{str(spec or 'pairs').replace(':', '-').replace(',', '-')}_{Path(label).stem}"


def synth_folder(sources: list[Path], output: Path, spec: NoiseSpec, seed: int, *, overwrite: bool = False,
                 on_file: Callable[[Path, str | None], None] | None = None) -> int:
    """Write a noisy copy of each clean image into ``output`` as NAME.png; ``on_file(source, error or None)`` after
    each. Returns the number that failed (unreadable, unwritable, or an output that would replace its input)."""
    failed = 0
    for src in sources:
        dst = output / f"{src.stem}.png"
        error = None
        if dst.resolve() == src.resolve():
            error = "output would overwrite the input"
        else:
            try:
                synth_file(src, dst, spec, seed, overwrite=overwrite)
            except ImageError as e:
                error = str(e)
        failed += error is not None
        if on_file:
            on_file(src, error)
    return failed


def synth_file(src: Path, dst: Path, spec: NoiseSpec, seed: int, *, overwrite: bool = False) -> None:
    """Write a noisy copy of one clean image (same bit depth, alpha kept), seeded by its name."""
    from ..io import write_image

    photo = read_image(src)
    photo.pixels = quantize(add_noise(photo.pixels, spec, image_rng(seed, src.name)), min(photo.bits, 16))
    write_image(photo, dst, overwrite=overwrite)
