"""Read and write photographs: 8/16-bit PNG and TIFF, JPEG, gray/RGB/RGBA, camera RAW.

Pixels travel as float32 H×W×C in [0,1] (C = 1 or 3) with the alpha channel, bit depth, EXIF
and ICC profile kept beside them, so the output is the input with only the pixels changed.
Every failure is an :class:`ImageError` whose message is one line fit for a user.
"""

from __future__ import annotations

import errno
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
from .errors import ConfigError, ImageError

Image.MAX_IMAGE_PIXELS = None  # we apply our own limit, with a message that names the file
# OpenCV's warnings on bad files would add lines; we report those ourselves
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

RAW_SUFFIXES = {".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf",
                ".rw2", ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".rwl", ".kdc", ".mrw", ".erf"}
IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"} | RAW_SUFFIXES
WRITE_FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG"}
DEFAULT_MAX_PIXELS = 256_000_000
_UMASK = os.umask(0)
os.umask(_UMASK)



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

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    def floats(self) -> np.ndarray:
        """The pixels as float32 in [0,1] (the array itself when it already is one)."""
        return _to_float(self.pixels) if self.pixels.dtype != np.float32 else self.pixels

    def with_pixels(self, pixels: np.ndarray) -> "Photo":
        """A copy carrying new pixels (same shape) and the same metadata."""
        return Photo(pixels.astype(np.float32), self.bits, self.alpha, self.exif, self.icc,
                     self.format, list(self.notices))


def read_image(source: str | os.PathLike | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               raw: bool = False) -> Photo:
    """Decode a file path or encoded bytes into a :class:`Photo`.

    Pixels come as float32 in [0,1]; with ``raw`` they stay as decoded (uint8, uint16 or float32), which halves
    the memory of a large photo and lets `denoise` write its output without a float copy of the whole image."""
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
        photo = _read_raw(data, max_pixels)
    else:
        photo = _read_encoded(data, suffix, max_pixels)
    if not raw:
        photo.pixels = photo.floats()
    return photo


def _read_encoded(data: bytes, suffix: str, max_pixels: int) -> Photo:
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if data[:4] in TIFF_MAGIC:  # a valid TIFF Pillow has no decoder for (float, 16-bit gray+alpha, …)
            return _read_tifffile(data, max_pixels)
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


#: IFD0 tags that describe the photo rather than the file's layout, carried with the Exif and GPS sub-IFDs. A TIFF's
#: own layout tags (strip offsets, planar configuration, photometric, …) must never travel: written into the output
#: they describe pixels that are not there.
EXIF_IFD0_TAGS = (0x010E, 0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B, 0x8298)  # description, make, model,
# orientation, software, date/time, artist, copyright
EXIF_SUB_IFDS = (0x8769, 0x8825)  # Exif, GPS


def _photo_exif(im: Image.Image) -> bytes | None:
    """The photo's EXIF (camera, settings, dates, GPS) without the container's layout tags; None if there is none."""
    raw = im.info.get("exif")
    try:
        src = Image.Exif()
        if raw:
            src.load(raw)
        else:
            src = im.getexif()  # TIFF: the tags of IFD0
        out = Image.Exif()
        for tag in EXIF_IFD0_TAGS:
            if tag in src:
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
    exif = _photo_exif(im)
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


TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


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
    return Photo(rgb, 16, format="RAW",
                 notices=["camera RAW demosaiced to sRGB (camera white balance), written as 16-bit"])


def _to_float(arr: np.ndarray) -> np.ndarray:
    """uint8/uint16 → float32 in [0,1] (a float array is returned as it is)."""
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    top = 65535.0 if arr.dtype == np.uint16 else 255.0
    out = arr.astype(np.float32)
    out /= np.float32(top)  # in place: a 24 MP image is 288 MB per float copy
    return out


def _to_int(pixels: np.ndarray, bits: int) -> np.ndarray:
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


def output_format(path: str | os.PathLike) -> str:
    """The format written for a path's suffix; raises ImageError for ones we cannot write."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise ImageError(f"cannot write {suffix or 'files without a suffix'}: use .png, .tif or .jpg")
    return WRITE_FORMATS[suffix]


def encode_image(photo: Photo, fmt: str, *, jpeg_quality: int = 95) -> bytes:
    """Encode a Photo as PNG, TIFF or JPEG bytes, keeping bit depth, alpha, EXIF and ICC."""
    bits = photo.bits
    if bits == 32 and fmt == "TIFF":
        return _encode_float_tiff(photo)
    if bits == 32:
        bits = 8 if fmt == "JPEG" else 16
        photo.notices.append(f"floating-point result written as {bits}-bit {fmt} (TIFF keeps floating point)")
    if fmt == "JPEG" and bits == 16:
        bits = 8
        photo.notices.append("JPEG holds 8 bits: 16-bit result reduced to 8-bit")
    arr = _to_int(photo.pixels, bits)
    alpha = photo.alpha
    if alpha is not None and fmt == "JPEG":
        alpha = None
        photo.notices.append("JPEG has no alpha channel: alpha dropped")
    if alpha is not None:
        arr = np.concatenate([arr, _to_int(alpha, bits)[..., None]], axis=2)
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


def _encode_float_tiff(photo: Photo) -> bytes:
    import tifffile

    arr = np.clip(_to_float(photo.pixels), 0, 1)
    if photo.alpha is not None:
        arr = np.concatenate([arr, _to_float(photo.alpha)[..., None]], axis=2)
    extratags = [(34675, 7, len(photo.icc), photo.icc, True)] if photo.icc else []
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr if arr.shape[2] > 1 else arr[..., 0], photometric="minisblack" if arr.shape[2] <= 2 else "rgb",
                     extrasamples=("unassalpha",) if arr.shape[2] in (2, 4) else None, compression="zlib",
                     extratags=extratags)
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
    """Write atomically: encode fully, write a temp file beside the target, then move it into place. Without
    ``overwrite`` an existing output is refused, also one that another process writes at the same moment. Every
    failure (a folder in the way, no permission, a full disk) is an ImageError; no partial file is left."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"output {path} is a folder")
    if path.exists() and not overwrite:
        raise ImageError(f"output {path} exists (use --overwrite to replace it)")
    data = encode_image(photo, output_format(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ImageError(f"cannot write {path}: a file is in the way of its folder") from None
    except OSError as e:
        raise ImageError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        write_bytes_atomic(path, data, overwrite=overwrite)
    except FileExistsError:
        raise ImageError(f"output {path} exists (use --overwrite to replace it)") from None
    except OSError as e:
        raise ImageError(f"cannot write {path}: {e.strerror or e}") from None


def write_bytes_atomic(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """Write bytes to path so that readers see either the old file or the whole new one. Without ``overwrite`` the
    file is linked into place, which fails with FileExistsError if the name was taken meanwhile (checked at the
    moment of the move, not only before)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
        if overwrite:
            os.replace(tmp, path)
        else:
            _place_new(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _place_new(tmp: str, path: Path) -> None:
    """Move tmp to a path that must not exist yet, atomically: a hard link (fails if the name is taken), or where
    the file system has none, an exclusive create that reserves the name before the rename."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    os.replace(tmp, path)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in a folder, sorted; ConfigError if it cannot be listed or holds none (a folder given
    to fit, distill or eval is the user's setting)."""
    try:
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as e:
        raise ConfigError(f"cannot list {folder}: {e.strerror or e}") from None
    if not files:
        raise ConfigError(f"no images in {folder}")
    return files


def read_rgb_folder(folder: str | os.PathLike, channels: int) -> list[np.ndarray]:
    """All images of a folder as float32 arrays with ``channels`` channels (for training); an unreadable one is an
    ImageError that names it."""
    return [to_channels(read_named(p).pixels, channels) for p in list_images(folder)]


def read_named(path: str | os.PathLike, **kwargs) -> Photo:
    """read_image, with the file's name in the error message (for training folders, where no batch names it)."""
    try:
        return read_image(path, **kwargs)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Gray → RGB by replication, RGB → gray by ITU-R 601 luma; unchanged if already right."""
    c = pixels.shape[2]
    if c == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=2)
    return (pixels @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
