import io as pyio
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from denoise_cli.io import ImageError, Photo, encode_image, read_image, write_image


def _roundtrip(photo: Photo, fmt: str) -> Photo:
    return read_image(encode_image(photo, fmt))


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("channels", [1, 3])
def test_lossless_roundtrip_keeps_bit_depth(fmt, bits, channels):
    rng = np.random.default_rng(0)
    top = 2**bits - 1
    px = (rng.integers(0, top + 1, (10, 12, channels)) / top).astype(np.float32)
    back = _roundtrip(Photo(px, bits), fmt)
    assert back.bits == bits
    assert back.pixels.shape == px.shape
    assert np.abs(back.pixels - px).max() < 1e-6


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
@pytest.mark.parametrize("bits", [8, 16])
def test_alpha_is_carried_untouched(fmt, bits):
    rng = np.random.default_rng(1)
    dtype = np.uint16 if bits == 16 else np.uint8
    alpha = rng.integers(0, np.iinfo(dtype).max, (8, 9)).astype(dtype)
    photo = Photo(rng.random((8, 9, 3)).astype(np.float32), bits, alpha=alpha)
    back = _roundtrip(photo, fmt)
    assert back.alpha is not None and np.array_equal(back.alpha, alpha)


def test_palette_and_cmyk_are_converted_with_a_notice():
    buf = pyio.BytesIO()
    Image.new("P", (8, 8), 3).save(buf, "PNG")
    assert any("palette" in n for n in read_image(buf.getvalue()).notices)
    buf = pyio.BytesIO()
    Image.new("CMYK", (8, 8), (0, 50, 100, 0)).save(buf, "JPEG")
    p = read_image(buf.getvalue())
    assert p.channels == 3 and any("CMYK" in n for n in p.notices)


def _icc_and_exif() -> tuple[bytes, bytes]:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    return icc, exif.tobytes()


@pytest.mark.parametrize("fmt,bits", [("PNG", 8), ("JPEG", 8), ("TIFF", 8), ("PNG", 16)])
def test_exif_and_icc_are_carried(fmt, bits):
    icc, exif = _icc_and_exif()
    photo = Photo(np.full((8, 8, 3), 0.5, np.float32), bits, exif=exif, icc=icc)
    back = _roundtrip(photo, fmt)
    assert back.icc == icc
    assert back.exif is not None and b"TestCam" in back.exif


def test_16bit_tiff_keeps_icc():
    icc, _ = _icc_and_exif()
    back = _roundtrip(Photo(np.full((8, 8, 3), 0.5, np.float32), 16, icc=icc), "TIFF")
    assert back.bits == 16 and back.icc == icc


def _bomb_png(w: int, h: int) -> bytes:
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_bad_inputs_raise_one_line_errors(tmp_path):
    good = encode_image(Photo(np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)), "PNG")
    cases = {
        "zero.png": (b"", "empty"),
        "text.png": (b"hello, not an image", "not an image"),
        "trunc.png": (good[: len(good) // 2], "truncated"),
        "bomb.png": (_bomb_png(50000, 50000), "limit"),
    }
    for name, (data, word) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageError) as e:
            read_image(tmp_path / name)
        assert word in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ImageError, match="cannot read"):
        read_image(tmp_path / "missing.png")


def test_write_refuses_existing_and_leaves_no_partial_file(tmp_path):
    photo = Photo(np.zeros((4, 4, 3), np.float32))
    target = tmp_path / "out.png"
    write_image(photo, target)
    before = target.read_bytes()
    with pytest.raises(ImageError, match="exists"):
        write_image(photo.with_pixels(np.ones((4, 4, 3))), target)
    assert target.read_bytes() == before
    with pytest.raises(ImageError, match="cannot write"):
        write_image(photo, tmp_path / "out.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_raw_garbage_is_a_clean_error(tmp_path):
    f = tmp_path / "photo.dng"
    f.write_bytes(b"II*\0garbage" * 10)
    with pytest.raises(ImageError, match="RAW"):
        read_image(f)


def test_camera_raw_is_demosaiced_to_16bit(tmp_path):
    from conftest import make_dng

    p = read_image(make_dng(tmp_path / "shot.dng"))
    assert p.bits == 16 and p.format == "RAW" and p.pixels.shape == (64, 96, 3)
    assert any("RAW" in n for n in p.notices)
