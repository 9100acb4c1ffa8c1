"""Decode photographs: PNG, TIFF (Pillow, or tifffile for what Pillow cannot), JPEG, BMP, WebP, GIF and camera RAW,
from a path or bytes. Every failure is an ImageError whose message is one line fit for a user."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError, ImageTooLargeError
from .bayer import layout
from .camera import camera_from_raw, exif_for
from .formats import DEFAULT_MAX_PIXELS, RAW_SUFFIXES, TIFF_MAGIC
from .photo import Photo

Image.MAX_IMAGE_PIXELS = None  # we apply our own limit, with a message that names the file
# OpenCV's warnings on bad files would add lines; we report those ourselves
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def read_image(source: str | os.PathLike | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               raw: bool = False, sensor: bool = False) -> Photo:
    """Decode a file path or encoded bytes into a :class:`Photo`.

    Pixels come as float32 in [0,1]; with ``raw`` they stay as decoded (uint8, uint16 or float32), which halves
    the memory of a large photo and lets `denoise` write its output without a float copy of the whole image.
    With ``sensor`` a camera RAW file also keeps its bytes (``Photo.sensor``), for denoising before demosaicking."""
    if isinstance(source, bytes):
        data, suffix = source, ""
    else:
        path = Path(source)
        suffix = path.suffix.lower()
        try:
            data = path.read_bytes()
        except IsADirectoryError:
            raise ImageError("is a directory") from None
        except OSError as e:
            raise ImageError(f"cannot read file: {e.strerror or e}") from None
    if not data:
        raise ImageError("empty file (0 bytes)")
    if suffix in RAW_SUFFIXES:
        photo = _read_raw(data, max_pixels, sensor)
    else:
        photo = _read_encoded(data, suffix, max_pixels, sensor)
    if not raw:
        photo.pixels = photo.floats()
    return photo


def _read_encoded(data: bytes, suffix: str, max_pixels: int, sensor: bool = False) -> Photo:
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if data[:4] in TIFF_MAGIC:  # a valid TIFF Pillow has no decoder for (float, 16-bit gray+alpha, …)
            return _read_tifffile(data, max_pixels)
        if not suffix:  # stdin: could still be a RAW file
            try:
                return _read_raw(data, max_pixels, sensor)
            except ImageError:
                pass
        raise ImageError("not an image file Pillow or rawpy can decode") from None
    except Exception as e:  # Pillow raises various errors on malformed headers
        raise ImageError(f"corrupt image header ({e})") from None
    _check_size(im.width, im.height, max_pixels)
    return _decode_pillow(im, data)


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(f"{width}×{height} is {width * height / 1e6:.0f} MP, over the "
                         f"{max_pixels / 1e6:.0f} MP limit (a guard against decompression bombs)")


#: IFD0 tags that describe the photo rather than the file's layout, carried with the Exif and GPS sub-IFDs. A TIFF's
#: own layout tags (strip offsets, planar configuration, photometric, …) must never travel: written into the output
#: they describe pixels that are not there.
EXIF_IFD0_TAGS = (0x010E, 0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B, 0x8298)  # description, make, model,
# orientation, software, date/time, artist, copyright
EXIF_SUB_IFDS = (0x8769, 0x8825)  # Exif, GPS


def _png_chunk(data: bytes, kind: bytes) -> bytes | None:
    """The payload of a PNG file's first chunk of this kind, found by walking the chunk headers (nothing decoded)."""
    pos = 8
    while pos + 8 <= len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == kind:
            return data[pos + 8 : pos + 8 + n]
        if data[pos + 4 : pos + 8] == b"IEND":
            return None
        pos += 12 + n
    return None


def _layout_description(text: object) -> bool:
    """Whether an ImageDescription is a writer's note of the file's array layout (tifffile's ``{"shape": [...]}``,
    ImageJ's ``ImageJ=…``) rather than words about the photo: carried into an output it would describe pages and
    planes that are not there, and readers that trust it fail."""
    s = str(text).lstrip()
    return s.startswith('{"shape"') or s.startswith("ImageJ=")


def _photo_exif(im: Image.Image, data: bytes) -> bytes | None:
    """The photo's EXIF (camera, settings, dates, GPS) without the container's layout tags; None if there is none."""
    raw = im.info.get("exif")
    if not raw and im.format == "PNG":  # an eXIf chunk after the pixels: Pillow would decode them all to find it
        raw = _png_chunk(data, b"eXIf")
        if not raw:
            return None
    try:
        src = Image.Exif()
        if raw:
            src.load(raw)
        else:
            src = im.getexif()  # TIFF: the tags of IFD0
        out = Image.Exif()
        for tag in EXIF_IFD0_TAGS:
            if tag in src and not (tag == 0x010E and _layout_description(src[tag])):
                out[tag] = src[tag]
        for tag in EXIF_SUB_IFDS:
            sub = src.get_ifd(tag)
            if sub:
                out.get_ifd(tag).update(sub)
        return out.tobytes() if len(out) else None
    except Exception:  # unreadable metadata is dropped, never the pixels: they were decoded before
        return None


def _decode_pillow(im: Image.Image, data: bytes) -> Photo:
    notices: list[str] = []
    fmt = im.format or "PNG"
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        notices.append(f"{frames} frames or pages: only the first is denoised")
    # Read the raw layout before anything loads the image (loading clears im.tile).
    args = im.tile[0].args if im.tile else ""
    rawmode = str(args[0] if isinstance(args, tuple) else args)
    icc = im.info.get("icc_profile") or None
    # Decode the pixels before touching EXIF: reading EXIF can load the image itself and hide a decoding error.
    try:
        if im.mode in ("RGB", "RGBA") and ";16" in rawmode:
            arr = _decode_cv2(data)  # Pillow holds RGB at 8 bits; OpenCV keeps all 16
        else:
            im.load()
            arr = None
    except (OSError, SyntaxError, ValueError, zlib.error) as e:
        if fmt == "TIFF" and not isinstance(e, SyntaxError):
            return _read_tifffile(data, 0)  # e.g. a compression Pillow lacks; tifffile says if it cannot either
        raise ImageError(f"truncated or corrupt image data ({e})") from None
    exif = _photo_exif(im, data)
    if arr is not None:
        alpha = arr[..., 3] if arr.shape[2] == 4 else None
        rgb = arr[..., 2::-1]  # BGR(A) → RGB
        return Photo(rgb, 16, alpha, exif, icc, fmt, notices)
    mode = im.mode
    if mode in ("P", "PA"):
        im = im.convert("RGBA" if ("transparency" in im.info or mode == "PA") else "RGB")
        notices.append("palette image converted to RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        im = im.convert("RGB")
        notices.append(f"{mode} image converted to RGB")
    elif mode == "1":
        im = im.convert("L")
        notices.append("1-bit image converted to 8-bit gray")
    elif mode in ("La",):
        im = im.convert("LA")
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N") or (mode == "I" and fmt in ("PNG", "TIFF")):
        arr = np.asarray(im)
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
            raise ImageError(f"unsupported pixel format: 32-bit integer ({mode})")
        return Photo(arr.astype(np.uint16)[..., None], 16, None, exif, icc, fmt, notices)
    if mode == "F" and fmt == "TIFF":
        return _read_tifffile(data, 0)
    if mode not in ("L", "LA", "RGB", "RGBA"):
        raise ImageError(f"unsupported pixel format: {mode}")
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    alpha = None
    if mode in ("LA", "RGBA"):
        arr, alpha = arr[..., :-1], arr[..., -1].copy()
    return Photo(arr, 8, alpha, exif, icc, fmt, notices)


def _read_tifffile(data: bytes, max_pixels: int) -> Photo:
    """TIFFs Pillow cannot decode: 32-bit float (read as [0,1]), 16-bit gray+alpha, planar layouts."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tf:
            page = tf.pages[0]
            if max_pixels:
                _check_size(page.imagewidth, page.imagelength, max_pixels)
            arr = page.asarray()
            axes, photometric, frames = page.axes, page.photometric, len(tf.pages)
            icc = page.tags.get(34675)
            icc = bytes(icc.value) if icc is not None else None
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(f"cannot decode this TIFF ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    notices = [f"{frames} pages: only the first is denoised"] if frames > 1 else []
    if axes.startswith("S"):  # planar: samples first
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or int(photometric) not in (1, 2) or arr.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"unsupported TIFF layout ({axes}, photometric {int(photometric)})")
    alpha = None
    if arr.shape[2] in (2, 4):
        arr, alpha = arr[..., :-1], arr[..., -1].copy()
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise ImageError("floating-point TIFF holds NaN or infinite values")
        if arr.min() < 0 or arr.max() > 1:
            notices.append("floating-point values outside 0–1 clipped")
            np.clip(arr, 0, 1, out=arr)
        if alpha is not None:
            alpha = np.clip(alpha.astype(np.float32), 0, 1)
        return Photo(arr, 32, alpha, None, icc, "TIFF", notices)
    if arr.dtype == np.uint8:
        return Photo(arr, 8, alpha, None, icc, "TIFF", notices)
    if arr.dtype == np.uint16:
        return Photo(arr, 16, alpha, None, icc, "TIFF", notices)
    raise ImageError(f"unsupported TIFF sample format: {arr.dtype}")


def _decode_cv2(data: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise OSError("decoder stopped early")
    return arr if arr.ndim == 3 else arr[..., None]


def _read_raw(data: bytes, max_pixels: int, sensor: bool = False) -> Photo:
    """A RAW file developed (camera white balance, 16-bit sRGB); with ``sensor`` the file's bytes are kept too where
    its sensor is a 2×2 Bayer one (for denoising before demosaicking), and a note says why where it is not."""
    import rawpy  # imported here: only RAW files need it

    notices = ["camera RAW demosaiced to sRGB (camera white balance), written as 16-bit"]
    keep = None
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            _check_size(raw.sizes.width, raw.sizes.height, max_pixels)
            if sensor:
                try:
                    layout(raw)
                    keep = data
                except ImageError as e:
                    notices.append(str(e))
            rgb = raw.postprocess(output_bps=16, use_camera_wb=True)
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(f"cannot decode camera RAW ({type(e).__name__}: {e})") from None
    return Photo(rgb, 16, exif=exif_for(camera_from_raw(data)), format="RAW", notices=notices, sensor=keep)
