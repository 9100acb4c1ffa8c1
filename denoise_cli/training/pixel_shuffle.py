"""Pixel-shuffle downsampling for real sRGB photos (Wu et al., §3.4).

Demosaicking correlates neighbouring pixels' noise, which breaks the blind spot. Taking every
4th pixel gives 16 sub-images whose pixels were 4 apart, far enough to be nearly independent.
Sub-image (a, b) = y[a::4, b::4]; its position in the 2×2 Bayer pattern, (a mod 2, b mod 2),
puts it in one of 4 groups that share a noise model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.mwcnn import pad_bottom_right

FACTOR = 4


def pd_down(x: torch.Tensor, factor: int = FACTOR) -> torch.Tensor:
    """(N,C,H,W) with H, W multiples of factor → (N·f², C, H/f, W/f), sub-image order (a, b) row-major."""
    n, c, h, w = x.shape
    s = F.pixel_unshuffle(x, factor)  # (N, C·f², H/f, W/f), channel index = c·f² + a·f + b
    return s.view(n, c, factor * factor, h // factor, w // factor).transpose(1, 2).reshape(
        n * factor * factor, c, h // factor, w // factor)


def pd_up(s: torch.Tensor, factor: int = FACTOR) -> torch.Tensor:
    """Exact inverse of :func:`pd_down`."""
    nf, c, h, w = s.shape
    n = nf // (factor * factor)
    x = s.view(n, factor * factor, c, h, w).transpose(1, 2).reshape(n, c * factor * factor, h, w)
    return F.pixel_shuffle(x, factor)


def bayer_groups(n_images: int, factor: int = FACTOR) -> torch.Tensor:
    """Group index (0..3) of every sub-image of pd_down's output: 2·(a mod 2) + (b mod 2)."""
    a = torch.arange(factor).repeat_interleave(factor)
    b = torch.arange(factor).repeat(factor)
    return (2 * (a % 2) + (b % 2)).repeat(n_images)


def pad_to_multiple(x: torch.Tensor, factor: int = FACTOR) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad bottom/right so H, W are multiples of factor; returns the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % factor, (-w) % factor
    return pad_bottom_right(x, ph, pw), (h, w)
