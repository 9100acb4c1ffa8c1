"""Random training patches from in-memory images, with flips and 90° rotations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ImagePool:
    """Training images with the chance of drawing each: several folders weigh the same however many
    images each holds."""
    images: list[np.ndarray]
    p: np.ndarray

    @classmethod
    def from_folders(cls, folders: list[list[np.ndarray]]) -> "ImagePool":
        """Pool the folders' images; each folder is drawn from equally often, its images uniformly."""
        p = np.concatenate([np.full(len(f), 1 / (len(folders) * len(f))) for f in folders])
        return cls([im for f in folders for im in f], p / p.sum())


def random_patches(images: list[np.ndarray] | ImagePool, size: int, count: int, rng: np.random.Generator,
                   *, augment: bool = True, align: int = 1) -> torch.Tensor:
    """``count`` random size×size crops (N,C,H,W float32), each flipped/rotated at random unless
    ``augment`` is off; crop origins are multiples of ``align`` (2 keeps the Bayer phase). Images of a
    list are drawn uniformly, those of an :class:`ImagePool` by its weights."""
    weights = None
    if isinstance(images, ImagePool):
        images, weights = images.images, images.p
    out = []
    for _ in range(count):
        img = images[rng.choice(len(images), p=weights) if weights is not None else rng.integers(len(images))]
        h, w = img.shape[:2]
        s = min(size, h, w)
        y = rng.integers((h - s) // align + 1) * align
        x = rng.integers((w - s) // align + 1) * align
        p = img[y : y + s, x : x + s]
        if augment:
            p = np.rot90(p, rng.integers(4))
            if rng.integers(2):
                p = p[:, ::-1]
        if s < size:  # tiny images: reflect up to size
            p = np.pad(p, ((0, size - s), (0, size - s), (0, 0)), mode="reflect")
        out.append(np.ascontiguousarray(p.transpose(2, 0, 1)))
    return torch.from_numpy(np.stack(out))
