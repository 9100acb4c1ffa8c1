"""Random training patches from in-memory images, with flips and 90° rotations."""

from __future__ import annotations

import numpy as np
import torch


def random_patches(images: list[np.ndarray], size: int, count: int, rng: np.random.Generator,
                   *, augment: bool = True, align: int = 1) -> torch.Tensor:
    """``count`` random size×size crops (N,C,H,W float32), each flipped/rotated at random unless
    ``augment`` is off; crop origins are multiples of ``align`` (2 keeps the Bayer phase)."""
    out = []
    for _ in range(count):
        img = images[rng.integers(len(images))]
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
