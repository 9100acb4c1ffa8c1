"""A camera RAW file's sensor data as four half-resolution Bayer planes, and back: what a denoiser working before
demosaicking reads and writes.

``open_raw`` keeps LibRaw's handle so that planes written back with :func:`put_planes` are developed by the same
rawpy settings as today's path (:func:`develop`: camera white balance, 16-bit sRGB). Values are black-subtracted and
scaled to [0,1] by the white level, the scale on which sensor noise is a·x + b.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..errors import ImageError

#: The planes' order: the colour at (0,0), (0,1), (1,0), (1,1) of each 2×2 cell, named as a pattern ("RGGB", …).
BAYER_LAYOUTS = ("RGGB", "BGGR", "GRBG", "GBRG")


@dataclass
class BayerPlanes:
    """H/2×W/2×4 float32 planes in [0,1] (black 0, white 1) in the order of ``cfa``, with what maps them back."""

    planes: np.ndarray
    cfa: str
    black: np.ndarray  # per plane, in raw units
    white: float


def pack(mosaic: np.ndarray) -> np.ndarray:
    """H×W mosaic (even sides) → H/2×W/2×4 planes, the 2×2 cell's sites in raster order."""
    h, w = mosaic.shape
    return mosaic.reshape(h // 2, 2, w // 2, 2).transpose(0, 2, 1, 3).reshape(h // 2, w // 2, 4)


def unpack(planes: np.ndarray) -> np.ndarray:
    """The inverse of :func:`pack`."""
    hh, ww, _ = planes.shape
    return planes.reshape(hh, ww, 2, 2).transpose(0, 2, 1, 3).reshape(2 * hh, 2 * ww)


@contextmanager
def open_raw(data: bytes) -> Iterator[object]:
    """LibRaw's handle on a RAW file's bytes (rawpy); ImageError when it cannot be decoded."""
    import rawpy

    try:
        raw = rawpy.imread(io.BytesIO(data))
    except Exception as e:
        raise ImageError(f"cannot decode camera RAW ({type(e).__name__}: {e})") from None
    with raw:
        yield raw


def layout(raw) -> str:
    """The 2×2 Bayer layout of the sensor ("RGGB", …); ImageError for X-Trans and other non-Bayer sensors."""
    pattern = np.asarray(raw.raw_pattern)
    desc = raw.color_desc.decode(errors="replace")
    if pattern.shape != (2, 2) or len(desc) < 4:
        raise ImageError(f"not a Bayer sensor (colour filter pattern {pattern.shape[0]}×{pattern.shape[1]}): "
                         "denoised after demosaicking instead")
    name = "".join(desc[i] for i in pattern.ravel())
    if name not in BAYER_LAYOUTS:
        raise ImageError(f"unsupported colour filter layout {name}: denoised after demosaicking instead")
    return name


def read_planes(raw) -> BayerPlanes:
    """The visible sensor area as four black-subtracted, white-scaled planes (an even crop of odd sizes)."""
    cfa = layout(raw)
    visible = np.asarray(raw.raw_image_visible)
    h, w = visible.shape[0] // 2 * 2, visible.shape[1] // 2 * 2
    colours = np.asarray(raw.raw_pattern).ravel()
    black = np.array([raw.black_level_per_channel[c] for c in colours], np.float32)
    white = float(raw.white_level)
    planes = (pack(visible[:h, :w]).astype(np.float32) - black) / np.maximum(white - black, 1)
    return BayerPlanes(planes, cfa, black, white)


def put_planes(raw, frame: BayerPlanes) -> None:
    """Write (denoised) planes back into LibRaw's raw buffer, in raw units, clipped to [0, white]."""
    visible = raw.raw_image_visible
    hh, ww, _ = frame.planes.shape
    values = frame.planes * np.maximum(frame.white - frame.black, 1) + frame.black
    cells = np.clip(np.round(values), 0, frame.white).astype(visible.dtype)
    visible[: 2 * hh, : 2 * ww] = unpack(cells)


def develop(raw, auto_bright: bool = True) -> np.ndarray:
    """The sensor data developed as today's RAW path does: camera white balance, 16-bit sRGB (H×W×3 uint16).
    ``auto_bright=False`` keeps LibRaw from scaling brightness by the histogram, so that files developed for a
    comparison differ only in their sensor data."""
    return raw.postprocess(output_bps=16, use_camera_wb=True, no_auto_bright=not auto_bright)
