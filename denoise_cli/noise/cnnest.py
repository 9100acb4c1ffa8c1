"""CNNest: the noise model of Wu et al. — five 1×1 convs (16 channels, ReLU) from the noisy
value y_i to a per-pixel C×C covariance Σn_i = L Lᵀ (Cholesky factor, positive diagonal).

Being pixel-wise and driven by y, it captures signal-dependent, cross-channel noise. ``groups``
independent copies serve the four Bayer groups of pixel-shuffled real photos. ``diagonal``
drops the cross-channel terms (the authors' choice for AWGN and HG): with a full factor, the
part of D-BSN's error shared by the three channels leaks into Σn's off-diagonals and inflates σ.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.cholesky import cholesky_params, tril_from_params

WIDTH = 16


def _cnnest(channels: int, diagonal: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = channels
    for i in range(5):
        c_out = (channels if diagonal else cholesky_params(channels)) if i == 4 else WIDTH
        layers.append(nn.Conv2d(c_in, c_out, 1))
        if i < 4:
            layers.append(nn.ReLU(inplace=True))
        c_in = c_out
    last = layers[-1]
    with torch.no_grad():  # start near softplus(−4) ≈ 5/255 with no cross-channel terms
        last.weight.mul_(0.01)
        last.bias.zero_()
    return nn.Sequential(*layers)


class NoiseModel(nn.Module):
    """``groups`` CNNests; ``forward(y, group)`` gives the Cholesky factor of Σn, (N,H,W,C,C)."""

    def __init__(self, channels: int = 3, groups: int = 1, diagonal: bool = False) -> None:
        super().__init__()
        self.channels, self.groups, self.diagonal = channels, groups, diagonal
        self.nets = nn.ModuleList(_cnnest(channels, diagonal) for _ in range(groups))

    def forward(self, y: torch.Tensor, group: torch.Tensor | int = 0) -> torch.Tensor:
        if isinstance(group, int):
            return tril_from_params(self.nets[group](y), self.channels)
        out = None
        for g in range(self.groups):  # per-sample group index (N,)
            sel = group == g
            if sel.any():
                part = tril_from_params(self.nets[g](y[sel]), self.channels)
                out = part.new_zeros((y.shape[0], *part.shape[1:])) if out is None else out
                out[sel] = part
        return out

    @torch.no_grad()
    def init_sigma(self, sigma: float) -> None:
        """Start every group at a flat noise level σ (0–255), e.g. a blind MAD estimate, so short
        runs need not climb from the default 5/255 one small Adam step at a time."""
        rows, cols = torch.tril_indices(self.channels, self.channels)
        on_diag = slice(None) if self.diagonal else rows == cols  # a diagonal factor has only diagonal params
        v = max(sigma / 255 - 1e-3, 1e-4)
        bias = 4.0 + float(torch.log(torch.expm1(torch.tensor(v))))  # inverse of softplus(t − 4) + 1e-3
        for net in self.nets:
            last = net[-1]
            last.bias.zero_()
            last.bias[on_diag] = bias

    @torch.no_grad()
    def sigma_curve(self, levels: torch.Tensor, group: int = 0) -> torch.Tensor:
        """Noise standard deviation per channel (0–255) on flat gray images at each level in [0,1]."""
        y = levels.view(-1, 1, 1, 1).expand(-1, self.channels, 1, 1).contiguous()
        L = self.forward(y, group)[:, 0, 0]
        return torch.sqrt(torch.diagonal(L @ L.transpose(-1, -2), dim1=-2, dim2=-1)) * 255
