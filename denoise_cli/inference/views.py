"""The self-ensemble: a function averaged over the 8 turned and mirrored views of its input."""

from __future__ import annotations

import numpy as np

from .tiles import TileFn

#: The self-ensemble's 8 views: (quarter turns, mirrored), the symmetries of the square.
DIHEDRAL = [(k, flip) for k in range(4) for flip in (False, True)]


def dihedral(x: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """x (H×W×C) turned k quarter turns counter-clockwise, then mirrored left–right when ``flip``."""
    y = np.rot90(x, k)
    return y[:, ::-1] if flip else y


def undo_dihedral(y: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """The inverse of :func:`dihedral` with the same ``k`` and ``flip``."""
    return np.rot90(y[:, ::-1] if flip else y, -k)


def ensemble_mean(fn: TileFn, x: np.ndarray) -> np.ndarray:
    """The mean of ``fn`` over the 8 turned/mirrored views of x, each turned back (a network is not exactly
    equivariant, so its errors partly average out)."""
    total = np.zeros(x.shape, np.float32)
    for k, flip in DIHEDRAL:
        total += undo_dihedral(fn(np.ascontiguousarray(dihedral(x, k, flip))), k, flip)
    return total / len(DIHEDRAL)
