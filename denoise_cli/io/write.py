"""Encode photographs (PNG, TIFF, JPEG at their bit depth, with alpha, EXIF and ICC) and write files atomically."""

from __future__ import annotations

import errno
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ImageError, OutputExistsError
from .formats import WRITE_FORMATS
from .png import encode_png, usable_cores
from .photo import Photo, to_float, to_int

_UMASK = os.umask(0)
os.umask(_UMASK)


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
    arr = to_int(photo.pixels, bits)
    alpha = photo.alpha
    if alpha is not None and fmt == "JPEG":
        alpha = None
        photo.notices.append("JPEG has no alpha channel: alpha dropped")
    if alpha is not None:
        arr = np.concatenate([arr, to_int(alpha, bits)[..., None]], axis=2)
    if fmt == "PNG":
        return encode_png(arr, icc=photo.icc, exif=photo.exif)
    if bits == 16:
        return _encode_tiff16(arr, photo)
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


def _tiff_bytes(arr: np.ndarray, icc: bytes | None) -> bytes:
    """H×W×C pixels (integer or float) as TIFF bytes with the ICC profile: deflate at zlib level 1 in strips of 64 rows
    compressed on all cores, integer pixels with the horizontal difference predictor (TIFF's own, read by every TIFF
    reader), which makes 16-bit photos smaller."""
    import tifffile

    extratags = [(34675, 7, len(icc), icc, True)] if icc else []
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr if arr.shape[2] > 1 else arr[..., 0], photometric="minisblack" if arr.shape[2] <= 2 else "rgb",
                     extrasamples=("unassalpha",) if arr.shape[2] in (2, 4) else None, extratags=extratags,
                     compression="zlib", compressionargs={"level": 1}, rowsperstrip=64, maxworkers=usable_cores(),
                     predictor=arr.dtype.kind in "ui")
    return buf.getvalue()


def _encode_float_tiff(photo: Photo) -> bytes:
    arr = np.clip(to_float(photo.pixels), 0, 1)
    if photo.alpha is not None:
        arr = np.concatenate([arr, to_float(photo.alpha)[..., None]], axis=2)
    return _tiff_bytes(arr, photo.icc)


def _encode_tiff16(arr: np.ndarray, photo: Photo) -> bytes:
    if photo.exif:
        photo.notices.append("EXIF is not carried into 16-bit TIFF (ICC profile is)")
    return _tiff_bytes(arr, photo.icc)


def write_image(photo: Photo, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write atomically: encode fully, write a temp file beside the target, then move it into place. Without
    ``overwrite`` an existing output is refused, also one that another process writes at the same moment. Every
    failure (a folder in the way, no permission, a full disk) is an ImageError; no partial file is left."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"output {path} is a folder")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output {path} exists")
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
        raise OutputExistsError(f"output {path} exists") from None
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
