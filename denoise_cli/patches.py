"""Random training patches from in-memory images, with flips and 90° rotations."""

from __future__ import annotations

import numpy as np
import torch


def random_patches(images: list[np.ndarray], size: int, count: int, rng: np.random.Generator) -> torch.Tensor:
    """``count`` random size×size crops (N,C,H,W float32), each flipped/rotated at random."""
    out = []
    for _ in range(count):
        img = images[rng.integers(len(images))]
        h, w = img.shape[:2]
        s = min(size, h, w)
        y, x = rng.integers(h - s + 1), rng.integers(w - s + 1)
        p = img[y : y + s, x : x + s]
        p = np.rot90(p, rng.integers(4))
        if rng.integers(2):
            p = p[:, ::-1]
        if s < size:  # tiny images: reflect up to size
            p = np.pad(p, ((0, size - s), (0, size - s), (0, 0)), mode="reflect")
        out.append(np.ascontiguousarray(p.transpose(2, 0, 1)))
    return torch.from_numpy(np.stack(out))
