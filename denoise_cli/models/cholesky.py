"""Per-pixel covariances from network outputs: a lower-triangular Cholesky factor with a positive diagonal, so every
predicted covariance is positive-definite (D-BSN's Σμ and CNNest's Σn)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-6  # added to covariances before inverses


def cholesky_params(c: int) -> int:
    """Parameters of a C×C lower-triangular factor."""
    return c * (c + 1) // 2


def tril_from_params(p: torch.Tensor, c: int, offset: float = 4.0) -> torch.Tensor:
    """(N,P,H,W) → lower-triangular L (N,H,W,C,C) with diagonal softplus(t − offset) + 1e-3;
    P = C(C+1)/2 for a full factor, or P = C for a diagonal one.

    The offset starts the standard deviation small (softplus(−4) ≈ 0.018 ≈ 5/255), as the
    authors do, so training begins from 'little noise' rather than an arbitrary level.
    """
    n, _, h, w = p.shape
    p = p.permute(0, 2, 3, 1)
    L = p.new_zeros((n, h, w, c, c))
    diag = torch.arange(c, device=p.device)
    if p.shape[-1] == c:  # diagonal factor (also C = 1)
        rows = cols = diag
    else:
        rows, cols = torch.tril_indices(c, c, device=p.device)
    L[..., rows, cols] = p
    L[..., diag, diag] = F.softplus(L[..., diag, diag] - offset) + 1e-3
    return L


def covariance(L: torch.Tensor) -> torch.Tensor:
    """Σ = L Lᵀ + ε I."""
    c = L.shape[-1]
    return L @ L.transpose(-1, -2) + EPS * torch.eye(c, device=L.device, dtype=L.dtype)
