"""A decoded photo: its pixels and everything needed to write it back faithfully (bit depth, alpha, EXIF, ICC), and
the conversions between integer and float pixels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .camera import Camera, camera_from_exif


@dataclass
class Photo:
    """Decoded pixels plus everything needed to write the image back faithfully.

    ``pixels`` is H×W×C (C = 1 or 3): float32 in [0,1], or as decoded — uint8 (8 bits), uint16 (16 bits) or float32
    (``bits`` 32, a floating-point TIFF)."""

    pixels: np.ndarray
    bits: int = 8  # 8, 16, or 32 for floating point
    alpha: np.ndarray | None = None  # H×W, original dtype, never touched
    exif: bytes | None = None
    icc: bytes | None = None
    format: str = "PNG"
    notices: list[str] = field(default_factory=list)
    sensor: bytes | None = None  # a camera RAW file's bytes, kept (read_image(sensor=True)) for denoising before demosaicking

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    @property
    def camera(self) -> Camera:
        """The camera and ISO its EXIF names (an empty Camera when it has none)."""
        return camera_from_exif(self.exif)

    def floats(self) -> np.ndarray:
        """The pixels as float32 in [0,1] (the array itself when it already is one)."""
        return to_float(self.pixels) if self.pixels.dtype != np.float32 else self.pixels

    def with_pixels(self, pixels: np.ndarray) -> "Photo":
        """A copy carrying new pixels (same shape) and the same metadata."""
        return Photo(pixels.astype(np.float32), self.bits, self.alpha, self.exif, self.icc,
                     self.format, list(self.notices))


def to_float(arr: np.ndarray) -> np.ndarray:
    """uint8/uint16 → float32 in [0,1] (a float array is returned as it is)."""
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    top = 65535.0 if arr.dtype == np.uint16 else 255.0
    out = arr.astype(np.float32)
    out /= np.float32(top)  # in place: a 24 MP image is 288 MB per float copy
    return out


def to_int(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Pixels of any kind as ``bits``-bit integers: as they are when they already are, else rescaled or rounded."""
    dtype = np.uint16 if bits == 16 else np.uint8
    if pixels.dtype == dtype:
        return pixels
    if pixels.dtype.kind == "u":  # another integer depth: 16 → 8 rounds, 8 → 16 is exact (×257)
        return (np.round(pixels / 257.0) if dtype == np.uint8 else pixels.astype(np.uint32) * 257).astype(dtype)
    top = 2**bits - 1
    tmp = np.clip(pixels, 0.0, 1.0)  # the one temporary; the rest is in place
    tmp *= top
    np.round(tmp, out=tmp)
    return tmp.astype(dtype)


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Gray → RGB by replication, RGB → gray by ITU-R 601 luma; unchanged if already right."""
    c = pixels.shape[2]
    if c == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=2)
    return (pixels @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
