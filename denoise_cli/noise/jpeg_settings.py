"""A JPEG file's quality and chroma subsampling, read exactly from its quantisation tables and frame header."""

from __future__ import annotations

import os

import numpy as np

#: The IJG (libjpeg) luminance table at quality 50, which qualities 1–100 scale.
_IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
_SAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def ijg_table(quality: int) -> np.ndarray:
    """libjpeg's luminance table at ``quality`` (1–100)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_IJG_LUMA * scale + 50) // 100, 1, 255)


def quality_of(table: list[int] | np.ndarray) -> tuple[int, bool]:
    """The IJG quality whose luminance table is nearest this one, and whether it matches exactly (a camera's own
    tables often do not; the nearest quality then stands for it)."""
    t = np.sort(np.asarray(table, float))
    errors = [np.abs(np.sort(ijg_table(q)) - t).sum() for q in range(1, 101)]
    best = int(np.argmin(errors))
    return best + 1, errors[best] == 0


def jpeg_settings(path: str | os.PathLike) -> tuple[int, str] | None:
    """(quality, subsampling) of a JPEG file, or None for any other format."""
    from PIL import Image, JpegImagePlugin

    with Image.open(path) as im:
        if im.format != "JPEG" or not getattr(im, "quantization", None):
            return None
        quality, _ = quality_of(im.quantization[0])
        sampling = _SAMPLING.get(JpegImagePlugin.get_sampling(im), "4:2:0")
    return quality, sampling
