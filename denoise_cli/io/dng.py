"""A minimal DNG writer for Bayer mosaics (tifffile): synthetic RAW scenes with known noise, for tests and benchmarks
of the RAW path. Enough tags for LibRaw (rawpy) to read and develop it: CFA layout, black and white levels, a colour
matrix that makes the camera's RGB linear sRGB (so a mosaic of linear sRGB develops back to its photo) and neutral
white balance."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .write import write_bytes_atomic

_CFA_CODES = {"R": 0, "G": 1, "B": 2}


def dng_bytes(mosaic: np.ndarray, cfa: str = "RGGB", black: int = 0, white: int = 65535,
              camera: str = "denoise-cli test camera") -> bytes:
    """An H×W uint16 mosaic (raw units, ``black`` to ``white``) as DNG bytes, ``cfa`` its layout: a 2×2 one ("RGGB")
    or, row by row, any square one (36 letters for a 6×6 X-Trans sensor)."""
    import tifffile

    xyz_to_srgb = (3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570)  # ColorMatrix1: XYZ → camera
    matrix = [v for x in xyz_to_srgb for v in (round(x * 10000), 10000)]
    side = int(round(len(cfa) ** 0.5))
    tags = [(254, "I", 1, 0, True), (33421, "H", 2, (side, side), True),
            (33422, "B", len(cfa), bytes(_CFA_CODES[c] for c in cfa), True),
            (50706, "B", 4, bytes([1, 4, 0, 0]), True), (50708, "s", 0, camera, True),
            (50721, 10, 9, matrix, True), (50728, 5, 3, [1, 1, 1, 1, 1, 1], True),
            (50714, "I", 1, int(black), True), (50717, "I", 1, int(white), True)]
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.asarray(mosaic, np.uint16), photometric=32803, extratags=tags)
    return buf.getvalue()


def write_dng(path: str | os.PathLike, mosaic: np.ndarray, cfa: str = "RGGB", black: int = 0,
              white: int = 65535) -> Path:
    """Write :func:`dng_bytes` atomically to ``path``."""
    path = Path(path)
    write_bytes_atomic(path, dng_bytes(mosaic, cfa, black, white))
    return path
