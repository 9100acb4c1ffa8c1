"""Apply a function to an image tile by tile and blend the results, writing finished rows into the output's own type.

Tiles sit on a grid, each read with ``overlap`` pixels of context on every side. Outputs are blended across a narrow
band (overlap/4) next to each tile's own pixels; the rest of the context is only context, so every pixel that counts
has at least ¾·overlap of real neighbourhood, seams vanish and tiled output matches untiled to float precision. Tiles
are processed row by row and each finished band of rows is written straight into the output array (float32, uint8 or
uint16), so memory is the input, the output and one row of tiles — not several float copies of a large photo.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

TileFn = Callable[[np.ndarray], np.ndarray]


def _ramp(n: int, lo_ctx: int, hi_ctx: int, overlap: int) -> np.ndarray:
    """1 on the tile's own pixels, falling linearly to 0 across a band of overlap/4 into the
    context on each side, 0 beyond it."""
    band = max(1, overlap // 4)
    fall = 1.0 - (np.arange(overlap) + 1) / (band + 1)
    fall = np.clip(fall, 0.0, 1.0).astype(np.float32)  # fall[k]: weight k+1 pixels out of the core
    r = np.ones(n, np.float32)
    if lo_ctx:
        r[:lo_ctx] = fall[:lo_ctx][::-1]
    if hi_ctx:
        r[n - hi_ctx :] = fall[:hi_ctx]
    return r


def count_tiles(h: int, w: int, tile: int | None) -> int:
    """How many network passes :func:`blend_tiles` makes for an h×w image (one without tiles)."""
    if tile is None or (h <= tile and w <= tile):
        return 1
    return -(-h // tile) * -(-w // tile)


def _store(dst: np.ndarray, rows: slice, values: np.ndarray) -> None:
    """Write float results in [0,1] into dst's rows in dst's type (rounded for integers)."""
    if dst.dtype.kind == "f":
        dst[rows] = values
        return
    top = np.iinfo(dst.dtype).max
    np.clip(values, 0.0, 1.0, out=values)
    values *= top
    np.round(values, out=values)
    dst[rows] = values


def _floats(src: np.ndarray) -> np.ndarray:
    """A block of source pixels as float32 in [0,1] (always a new array)."""
    if src.dtype.kind == "f":
        return src.astype(np.float32, copy=True)
    return src.astype(np.float32) / np.float32(np.iinfo(src.dtype).max)


def blend_tiles(fn: TileFn, src: np.ndarray, dst: np.ndarray, tile: int | None, overlap: int, *,
                strength: float = 1.0, on_tile: Callable[[int, int], None] | None = None, passes: int = 1) -> None:
    """Apply ``fn`` (float32 tile in [0,1] → same shape) to src tile by tile with ``overlap`` context, blend, and write
    the result into dst (same shape; float32, uint8 or uint16) one finished band of rows at a time. ``tile`` None runs
    the whole image at once. ``strength`` < 1 keeps that share of the estimate: y − strength·(y − x̂)."""
    h, w, _ = src.shape
    total = count_tiles(h, w, tile) * passes
    if tile is None or (h <= tile and w <= tile):
        res = fn(_floats(src))
        if strength != 1.0:
            _soften(res, src, strength)
        _store(dst, slice(0, h), res)
        if on_tile:
            on_tile(passes, total)
        return
    band = min(max(1, overlap // 4), overlap)  # rows of blending on each side of a tile's core
    carry_acc = carry_wt = None
    done = 0
    for y0 in range(0, h, tile):
        lo, hi = max(0, y0 - band), min(h, y0 + tile + band)
        acc = np.zeros((hi - lo, w, dst.shape[2]), np.float32)
        wt = np.zeros((hi - lo, w, 1), np.float32)
        if carry_acc is not None:
            acc[: len(carry_acc)] = carry_acc
            wt[: len(carry_wt)] = carry_wt
        ya, yb = max(0, y0 - overlap), min(h, y0 + tile + overlap)
        wy = _ramp(yb - ya, y0 - ya, yb - min(h, y0 + tile), overlap)[lo - ya : hi - ya]
        for x0 in range(0, w, tile):
            xa, xb = max(0, x0 - overlap), min(w, x0 + tile + overlap)
            res = fn(_floats(src[ya:yb, xa:xb]))[lo - ya : hi - ya]
            wx = _ramp(xb - xa, x0 - xa, xb - min(w, x0 + tile), overlap)
            weight = (wy[:, None] * wx[None, :])[..., None]
            res *= weight
            acc[:, xa:xb] += res
            wt[:, xa:xb] += weight
            done += passes
            if on_tile:
                on_tile(done, total)
        final = (y0 + tile - band if y0 + tile < h else hi) - lo  # rows no later tile row writes to
        out = acc[:final]
        out /= wt[:final]
        if strength != 1.0:
            _soften(out, src[lo : lo + final], strength)
        _store(dst, slice(lo, lo + final), out)
        carry_acc, carry_wt = acc[final:].copy(), wt[final:].copy()


def _soften(estimate: np.ndarray, src: np.ndarray, strength: float) -> None:
    """estimate ← y − strength·(y − estimate), in place, for the source pixels y of the same rows."""
    y = _floats(src)
    estimate -= y
    estimate *= strength
    estimate += y


def tiled(fn: TileFn, pixels: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Apply ``fn`` tile by tile with ``overlap`` context to float32 pixels, blending into one new array."""
    out = np.empty(pixels.shape, np.float32)
    blend_tiles(fn, pixels, out, tile, overlap)
    return out
