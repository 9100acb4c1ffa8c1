"""Read and write photographs: 8/16-bit PNG and TIFF, JPEG, gray/RGB/RGBA, camera RAW.

Pixels travel as float32 H×W×C in [0,1] (C = 1 or 3) with the alpha channel, bit depth, EXIF
and ICC profile kept beside them, so the output is the input with only the pixels changed.
Every failure is an :class:`ImageError` whose message is one line fit for a user.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = None  # we apply our own limit, with a message that names the file
# OpenCV's warnings on bad files would add lines; we report those ourselves
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

RAW_SUFFIXES = {".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf",
                ".rw2", ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".rwl", ".kdc", ".mrw", ".erf"}
IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp"} | RAW_SUFFIXES
WRITE_FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG"}
DEFAULT_MAX_PIXELS = 256_000_000
_UMASK = os.umask(0)
os.umask(_UMASK)


class ImageError(Exception):
    """An image that cannot be read or written; the message is one line for the user."""


@dataclass
class Photo:
    """Decoded pixels in [0,1] plus everything needed to write the image back faithfully."""

    pixels: np.ndarray  # float32, H×W×C, C in {1, 3}
    bits: int = 8
    alpha: np.ndarray | None = None  # H×W, original integer dtype, never touched
    exif: bytes | None = None
    icc: bytes | None = None
    format: str = "PNG"
    notices: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    def with_pixels(self, pixels: np.ndarray) -> "Photo":
        """A copy carrying new pixels (same shape) and the same metadata."""
        return Photo(pixels.astype(np.float32), self.bits, self.alpha, self.exif, self.icc,
                     self.format, list(self.notices))


def read_image(source: str | os.PathLike | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Decode a file path or encoded bytes into a :class:`Photo`."""
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
        return _read_raw(data, max_pixels)
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if not suffix:  # stdin: could still be a RAW file
            try:
                return _read_raw(data, max_pixels)
            except ImageError:
                pass
        raise ImageError("not an image file Pillow or rawpy can decode") from None
    except Exception as e:  # Pillow raises various errors on malformed headers
        raise ImageError(f"corrupt image header ({e})") from None
    _check_size(im.width, im.height, max_pixels)
    return _decode_pillow(im, data)


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(f"{width}×{height} is {width * height / 1e6:.0f} MP, over the "
                         f"{max_pixels / 1e6:.0f} MP limit (decompression-bomb guard; see --max-pixels)")


def _decode_pillow(im: Image.Image, data: bytes) -> Photo:
    notices: list[str] = []
    fmt = im.format or "PNG"
    # Read the raw layout before anything loads the image (loading clears im.tile).
    args = im.tile[0].args if im.tile else ""
    rawmode = str(args[0] if isinstance(args, tuple) else args)
    icc = im.info.get("icc_profile") or None
    try:
        exif = im.info.get("exif") or (im.getexif().tobytes() if len(im.getexif()) else None)
    except Exception:
        exif = None
    try:
        if im.mode in ("RGB", "RGBA") and ";16" in rawmode:
            arr = _decode_cv2(data)  # Pillow holds RGB at 8 bits; OpenCV keeps all 16
        else:
            im.load()
            arr = None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"truncated or corrupt image data ({e})") from None
    if arr is not None:
        alpha = arr[..., 3] if arr.shape[2] == 4 else None
        rgb = arr[..., 2::-1]  # BGR(A) → RGB
        return Photo(_to_float(rgb), 16, alpha, exif, icc, fmt, notices)
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
        return Photo(_to_float(arr.astype(np.uint16)[..., None]), 16, None, exif, icc, fmt, notices)
    if mode not in ("L", "LA", "RGB", "RGBA"):
        raise ImageError(f"unsupported pixel format: {mode}")
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    alpha = None
    if mode in ("LA", "RGBA"):
        arr, alpha = arr[..., :-1], arr[..., -1].copy()
    return Photo(_to_float(arr), 8, alpha, exif, icc, fmt, notices)


def _decode_cv2(data: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise OSError("decoder stopped early")
    return arr if arr.ndim == 3 else arr[..., None]


def _read_raw(data: bytes, max_pixels: int) -> Photo:
    import rawpy  # imported here: only RAW files need it

    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            _check_size(raw.sizes.width, raw.sizes.height, max_pixels)
            rgb = raw.postprocess(output_bps=16, use_camera_wb=True)
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(f"cannot decode camera RAW ({type(e).__name__}: {e})") from None
    return Photo(_to_float(rgb), 16, format="RAW",
                 notices=["camera RAW demosaiced to sRGB (camera white balance), written as 16-bit"])


def _to_float(arr: np.ndarray) -> np.ndarray:
    top = 65535.0 if arr.dtype == np.uint16 else 255.0
    out = arr.astype(np.float32)
    out /= np.float32(top)  # in place: a 24 MP image is 288 MB per float copy
    return out


def _to_int(pixels: np.ndarray, bits: int) -> np.ndarray:
    top = 2**bits - 1
    dtype = np.uint16 if bits == 16 else np.uint8
    tmp = np.clip(pixels, 0.0, 1.0)  # the one temporary; the rest is in place
    tmp *= top
    np.round(tmp, out=tmp)
    return tmp.astype(dtype)


def output_format(path: str | os.PathLike) -> str:
    """The format written for a path's suffix; raises ImageError for ones we cannot write."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise ImageError(f"cannot write {suffix or 'files without a suffix'}: use .png, .tif or .jpg")
    return WRITE_FORMATS[suffix]


def encode_image(photo: Photo, fmt: str, *, jpeg_quality: int = 95) -> bytes:
    """Encode a Photo as PNG, TIFF or JPEG bytes, keeping bit depth, alpha, EXIF and ICC."""
    bits = photo.bits
    if fmt == "JPEG" and bits == 16:
        bits = 8
        photo.notices.append("JPEG holds 8 bits: 16-bit result reduced to 8-bit")
    arr = _to_int(photo.pixels, bits)
    alpha = photo.alpha
    if alpha is not None and fmt == "JPEG":
        alpha = None
        photo.notices.append("JPEG has no alpha channel: alpha dropped")
    if alpha is not None:
        a = alpha if alpha.dtype == arr.dtype else _to_int(_to_float(alpha), bits)
        arr = np.concatenate([arr, a[..., None]], axis=2)
    if bits == 16:
        return _encode16(arr, fmt, photo)
    im = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    kwargs: dict = {}
    if photo.icc:
        kwargs["icc_profile"] = photo.icc
    if photo.exif:
        kwargs["exif"] = photo.exif
    if fmt == "JPEG":
        kwargs.update(quality=jpeg_quality, subsampling=0)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _encode16(arr: np.ndarray, fmt: str, photo: Photo) -> bytes:
    if fmt == "TIFF":
        import tifffile

        extratags = [(34675, 7, len(photo.icc), photo.icc, True)] if photo.icc else []
        photometric = "minisblack" if arr.shape[2] <= 2 else "rgb"
        extrasamples = ("unassalpha",) if arr.shape[2] in (2, 4) else None
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr if arr.shape[2] > 1 else arr[..., 0], photometric=photometric,
                         extrasamples=extrasamples, compression="zlib", extratags=extratags)
        if photo.exif:
            photo.notices.append("EXIF is not carried into 16-bit TIFF (ICC profile is)")
        return buf.getvalue()
    bgr = arr if arr.shape[2] in (1, 2) else arr[..., [2, 1, 0, 3][: arr.shape[2]]]
    if arr.shape[2] == 2:  # gray+alpha: OpenCV has no such layout, write RGBA
        bgr = np.concatenate([np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:]], axis=2)
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise ImageError("PNG encoder failed")
    return _png_add_chunks(buf.tobytes(), photo.icc, photo.exif)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_add_chunks(png: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    """Insert iCCP and eXIf chunks after IHDR (OpenCV's PNG writer has no metadata options)."""
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif)
    end_ihdr = 8 + 8 + 13 + 4
    return png[:end_ihdr] + extra + png[end_ihdr:]


def write_image(photo: Photo, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write atomically: encode fully, write a temp file beside the target, then rename."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ImageError(f"output {path} exists (use --overwrite to replace it)")
    data = encode_image(photo, output_format(path))
    write_bytes_atomic(path, data)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write bytes to path so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in a folder, sorted; ImageError if there are none."""
    try:
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as e:
        raise ImageError(f"cannot list {folder}: {e.strerror or e}") from None
    if not files:
        raise ImageError(f"no images in {folder}")
    return files


def read_rgb_folder(folder: str | os.PathLike, channels: int) -> list[np.ndarray]:
    """All images of a folder as float32 arrays with ``channels`` channels (for training)."""
    return [to_channels(read_image(p).pixels, channels) for p in list_images(folder)]


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Gray → RGB by replication, RGB → gray by ITU-R 601 luma; unchanged if already right."""
    c = pixels.shape[2]
    if c == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=2)
    return (pixels @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
