"""Which files are images: the suffixes read and written, camera RAW, and the size guard's default."""

from __future__ import annotations

RAW_SUFFIXES = {".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf",
                ".rw2", ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".rwl", ".kdc", ".mrw", ".erf"}
IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"} | RAW_SUFFIXES
WRITE_FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG"}
DEFAULT_MAX_PIXELS = 256_000_000
TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
