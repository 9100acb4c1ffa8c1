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


def _png_bytes(px: np.ndarray) -> bytes:
    buf = pyio.BytesIO()
    Image.fromarray(px).save(buf, "PNG")
    return buf.getvalue()


def test_corrupt_pixel_data_is_an_error_not_a_black_image():
    data = bytearray(_png_bytes((np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8)))
    at = data.find(b"IDAT") + 20
    data[at : at + 40] = bytes(b ^ 0xFF for b in data[at : at + 40])  # bytes flipped inside the compressed pixels
    with pytest.raises(ImageError, match="corrupt"):
        read_image(bytes(data))


def _tiff(path, arr, **kwargs):
    import tifffile

    tifffile.imwrite(path, arr, **kwargs)
    return path


def test_tiff_layout_tags_never_travel_as_exif(tmp_path):
    """A planar TIFF's strip offsets and planar configuration written into the output would describe pixels that are
    not there: only the photo's own tags (camera, date, Exif IFD) are carried."""
    px = (np.random.default_rng(1).random((32, 40, 3)) * 255).astype(np.uint8)
    src = _tiff(tmp_path / "planar.tif", px.transpose(2, 0, 1), planarconfig="separate", photometric="rgb")
    photo = read_image(src)
    assert np.array_equal(np.round(photo.pixels * 255).astype(np.uint8), px)
    for fmt in ("TIFF", "PNG"):
        back = read_image(encode_image(photo, fmt))
        assert np.array_equal(back.pixels, photo.pixels)
    cmyk = tmp_path / "cmyk.tif"
    Image.fromarray(px).convert("CMYK").save(cmyk)
    out = read_image(encode_image(read_image(cmyk), "TIFF"))
    assert out.pixels.shape == (32, 40, 3) and out.pixels.mean() > 0.2  # decoded, not garbage


def test_exif_keeps_the_camera_and_settings_but_no_layout_tags():
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0111] = "Canon", "EOS 80D", 1234  # make, model, StripOffsets
    exif.get_ifd(0x8769)[0x8827] = 3200  # ISO
    px = np.full((8, 8, 3), 128, np.uint8)
    buf = pyio.BytesIO()
    Image.fromarray(px).save(buf, "JPEG", exif=exif.tobytes())
    kept = Image.Exif()
    kept.load(read_image(buf.getvalue()).exif)
    assert kept[0x010F] == "Canon" and kept[0x0110] == "EOS 80D" and kept.get_ifd(0x8769)[0x8827] == 3200
    assert 0x0111 not in kept


def test_float_and_16bit_gray_alpha_tiffs_are_read_and_written_back(tmp_path):
    rng = np.random.default_rng(2)
    f32 = rng.random((16, 20, 3)).astype(np.float32)
    photo = read_image(_tiff(tmp_path / "float.tif", f32, photometric="rgb"))
    assert photo.bits == 32 and np.abs(photo.pixels - f32).max() < 1e-7
    back = read_image(encode_image(photo, "TIFF"))
    assert back.bits == 32 and np.abs(back.pixels - f32).max() < 1e-7
    assert read_image(encode_image(photo, "PNG")).bits == 16 and any("floating" in n for n in photo.notices)
    ga = np.stack([rng.integers(0, 65536, (16, 20)), np.full((16, 20), 40000)], 2).astype(np.uint16)
    photo = read_image(_tiff(tmp_path / "ga.tif", ga, photometric="minisblack", extrasamples=["unassalpha"]))
    assert photo.bits == 16 and photo.channels == 1 and np.array_equal(photo.alpha, ga[..., 1])
    assert np.array_equal(np.round(photo.pixels[..., 0] * 65535).astype(np.uint16), ga[..., 0])


def test_multi_frame_images_say_that_only_the_first_frame_is_used(tmp_path):
    px = (np.random.default_rng(3).random((8, 8, 3)) * 255).astype(np.uint8)
    Image.fromarray(px).save(tmp_path / "a.gif", save_all=True, append_images=[Image.fromarray(255 - px)])
    _tiff(tmp_path / "p.tif", np.stack([px, 255 - px]), photometric="rgb")
    for name in ("a.gif", "p.tif"):
        assert any("only the first" in n for n in read_image(tmp_path / name).notices), name


def test_raw_pixels_keep_their_integer_type():
    px = (np.random.default_rng(4).random((8, 8, 3)) * 255).astype(np.uint8)
    photo = read_image(_png_bytes(px), raw=True)
    assert photo.pixels.dtype == np.uint8 and np.array_equal(photo.pixels, px)
    assert read_image(encode_image(photo, "PNG"), raw=True).pixels.tobytes() == px.tobytes()


def test_no_overwrite_is_checked_when_the_file_is_moved_into_place(tmp_path):
    """A name taken between the check and the move (another process writing the same output) is not replaced."""
    from denoise_cli.io import write_bytes_atomic

    target = tmp_path / "x.png"
    target.write_bytes(b"first")
    with pytest.raises(FileExistsError):
        write_bytes_atomic(target, b"second", overwrite=False)
    assert target.read_bytes() == b"first" and [p.name for p in tmp_path.iterdir()] == ["x.png"]
    write_bytes_atomic(tmp_path / "y.png", b"new", overwrite=False)
    assert (tmp_path / "y.png").read_bytes() == b"new"


def test_write_errors_are_one_line_image_errors(tmp_path):
    photo = Photo(np.zeros((4, 4, 3), np.float32))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageError, match="cannot write"):
        write_image(photo, tmp_path / "file" / "out.png")  # a file where a folder should be
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError, match="is a folder"):
        write_image(photo, tmp_path / "dir.png", overwrite=True)


def test_png_exif_after_the_pixels_is_found_without_decoding_twice():
    from denoise_cli.io.png import encode_png

    _, exif = _icc_and_exif()
    data = encode_png(np.zeros((8, 8, 3), np.uint16), exif=exif)
    start = data.index(b"eXIf") - 4  # move the chunk to just before IEND, where the PNG specification allows it too
    n = int.from_bytes(data[start : start + 4], "big") + 12
    chunk, rest = data[start : start + n], data[:start] + data[start + n :]
    moved = rest[:-12] + chunk + rest[-12:]
    assert moved.index(b"eXIf") > moved.index(b"IDAT")
    assert b"TestCam" in read_image(moved).exif


@pytest.mark.parametrize("bits", [16])  # 8-bit TIFFs are Pillow's, uncompressed
def test_tiffs_are_written_in_predicted_strips_that_read_back_exactly(bits):
    import tifffile

    rng = np.random.default_rng(2)
    top = 2**bits - 1
    px = (rng.integers(0, top + 1, (150, 40, 3)) / top).astype(np.float32)  # 150 rows: three strips of 64
    data = encode_image(Photo(px, bits), "TIFF")
    page = tifffile.TiffFile(pyio.BytesIO(data)).pages[0]
    assert page.predictor == 2 and len(page.dataoffsets) == 3
    assert np.abs(read_image(data).pixels - px).max() < 1e-6
