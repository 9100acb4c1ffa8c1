"""Folders of images, as fit, distill and eval read them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ImageError
from .formats import IMAGE_SUFFIXES
from .photo import Photo, to_channels
from .read import read_image


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
