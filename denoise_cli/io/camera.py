"""Which camera took a photo, and at what ISO: read from its EXIF (JPEG, PNG, TIFF) or a RAW file's own tags."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image

MAKE, MODEL, EXIF_IFD, ISO = 0x010F, 0x0110, 0x8769, 0x8827


@dataclass(frozen=True)
class Camera:
    """A camera as its photos name it; ``iso`` is the photo's sensitivity (None where unrecorded)."""

    make: str | None = None
    model: str | None = None
    iso: float | None = None

    @property
    def name(self) -> str | None:
        """'Make Model' without the make repeated ('Canon' + 'Canon EOS 80D' → 'Canon EOS 80D'); None if unknown."""
        make, model = (_clean(self.make), _clean(self.model))
        if not model:
            return make or None
        if make and not model.lower().startswith(make.split()[0].lower()):
            return f"{make} {model}"
        return model

    @property
    def known(self) -> bool:
        return self.name is not None


def _clean(text: str | None) -> str:
    return re.sub(r"\s+", " ", (text or "").replace("\0", " ")).strip()


def same_camera(a: str | None, b: str | None) -> bool:
    """Camera names compared without case and spacing differences."""
    return bool(a and b) and _clean(a).lower() == _clean(b).lower()


def camera_from_exif(exif: bytes | None) -> Camera:
    """Make, model and ISO from EXIF bytes (as Photo.exif carries them); an empty Camera when there are none."""
    if not exif:
        return Camera()
    try:
        tags = Image.Exif()
        tags.load(exif)
        iso = tags.get_ifd(EXIF_IFD).get(ISO)
    except Exception:  # unreadable EXIF: no camera, never a failure
        return Camera()
    if isinstance(iso, (tuple, list)):
        iso = iso[0] if iso else None
    return Camera(tags.get(MAKE), tags.get(MODEL), float(iso) if iso else None)


def camera_from_raw(data: bytes) -> Camera:
    """Make, model and ISO from a TIFF-based RAW file's tags (DNG, CR2, NEF, ARW, …); an empty Camera otherwise."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tf:
            tags = tf.pages[0].tags
            make = tags.get("Make")
            model = tags.get("Model") or tags.get("UniqueCameraModel")
            exif = tags.get("ExifTag")
            iso = (exif.value or {}).get("ISOSpeedRatings") if exif is not None else None
    except Exception:
        return Camera()
    if isinstance(iso, (tuple, list)):
        iso = iso[0] if iso else None
    return Camera(make.value if make else None, model.value if model else None, float(iso) if iso else None)


def exif_for(camera: Camera) -> bytes | None:
    """EXIF bytes naming the camera and ISO (what a RAW's own tags said), so the output can carry them."""
    if not camera.known and camera.iso is None:
        return None
    tags = Image.Exif()
    if camera.make:
        tags[MAKE] = camera.make
    if camera.model:
        tags[MODEL] = camera.model
    if camera.iso is not None:
        tags.get_ifd(EXIF_IFD)[ISO] = int(camera.iso)
    return tags.tobytes()
