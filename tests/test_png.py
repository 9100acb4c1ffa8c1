"""The PNG writer: every layout decodes to the same pixels in Pillow and OpenCV, bands deflated in parallel make one
valid zlib stream, and ICC/EXIF come through."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from denoise_cli.io import png
from denoise_cli.io.png import encode_png


def _pixels(h: int, w: int, c: int, dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.linspace(0, 1, w)[None, :, None] * np.linspace(0.2, 1, h)[:, None, None]
    top = np.iinfo(dtype).max
    noisy = smooth + rng.normal(0, 0.05, (h, w, c))
    return (np.clip(noisy, 0, 1) * top).round().astype(dtype)


def _idat(data: bytes) -> bytes:
    """The concatenated IDAT payloads of a PNG file."""
    pos, out = 8, b""
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            out += data[pos + 8 : pos + 8 + n]
        pos += 12 + n
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_pixels_come_back_exactly(channels, dtype):
    arr = _pixels(37, 53, channels, dtype)
    data = encode_png(arr)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    back = back[..., None] if back.ndim == 2 else back[..., [2, 1, 0, 3][:channels]]
    assert back.dtype == dtype and np.array_equal(back, arr)
    if dtype == np.uint8:  # Pillow as a second, independent decoder
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))).reshape(arr.shape), arr)


def test_gray_alpha_is_one_layout():
    arr = _pixels(20, 30, 2, np.uint8)
    im = Image.open(io.BytesIO(encode_png(arr)))
    assert im.mode == "LA" and np.array_equal(np.asarray(im), arr)


def test_bands_deflated_side_by_side_join_into_one_stream(monkeypatch):
    monkeypatch.setattr(png, "PARALLEL_BYTES", 1)  # small images take the parallel path too
    arr = _pixels(101, 64, 3, np.uint16)
    single, parallel = encode_png(arr, threads=1), encode_png(arr, threads=3)
    assert single != parallel  # three deflate streams joined, not one
    assert zlib.decompress(_idat(parallel)) == zlib.decompress(_idat(single))  # adler32 of the whole checks out
    back = cv2.imdecode(np.frombuffer(parallel, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert np.array_equal(back, arr)


def test_icc_and_exif_are_carried():
    exif = Image.Exif()
    exif[0x010F] = "TestMake"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode_png(_pixels(8, 8, 3, np.uint8), icc=icc, exif=exif.tobytes())
    im = Image.open(io.BytesIO(data))
    assert im.info["icc_profile"] == icc
    assert im.getexif()[0x010F] == "TestMake"


def test_refuses_what_png_cannot_hold():
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4, 3), np.float32))
