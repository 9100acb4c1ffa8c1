"""D-BSN: the dilated blind-spot network of Wu et al. (ECCV 2020, Fig. 3).

Each output pixel sees its neighbourhood but never itself. The first conv of each branch is
centrally masked (3×3 or 5×5 with the centre weight forced to 0); every later spatial conv is
dilated by s ≥ 2 (3×3 mask) or s ≥ 3 (5×5 mask), so any path back to the input lands at an
offset s·k + m with m a non-zero masked-kernel tap, which can never be 0. 1×1 convs and skips
keep that. The head predicts the mean μ and a Cholesky factor of the covariance Σμ.

Unlike the paper, μ is by default the learned output *plus the mean of the 8 neighbours*: also
blind, it gives μ a sensible start, so short CPU budgets do not end with μ still near a
constant (which fusion turns into washed-out colour). `ring_skip=False` is the paper's μ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .cholesky import cholesky_params, tril_from_params


#: Σμ's softplus offset (tril_from_params) for each start. "large": σ ≈ 33/255 from whatever D-BSN's features give
#: (μ untrusted, fusion ≈ y). "small": σ ≈ 4.6/255, the authors' start, and no cross-channel or feature-dependent
#: terms until the likelihood trains them (the Σμ rows of the last conv start at zero; phase A's MSE never moves them).
SIGMA_MU_START = {"large": 2.0, "small": 4.0}


@dataclass(frozen=True)
class DBSNConfig:
    channels: int = 3
    width: int = 32
    modules: int = 5  # MDC modules per branch (paper: 7)
    ring_skip: bool = True  # μ = mean of the 8 neighbours + learned residual (False: the paper's plain μ)
    sigma_mu_start: str = "large"  # Σμ where the likelihood phase begins: SIGMA_MU_START's keys


#: "full": the paper's 7 MDC modules per branch at 64 channels; "small": trains usefully on a CPU.
ARCHS = {"small": {"width": 32, "modules": 5}, "full": {"width": 64, "modules": 7}}


class MaskedConv2d(nn.Conv2d):
    """A k×k conv whose centre tap is always zero: output i never sees input i."""

    def __init__(self, c_in: int, c_out: int, k: int) -> None:
        super().__init__(c_in, c_out, k, padding=k // 2)
        mask = torch.ones_like(self.weight)
        mask[:, :, k // 2, k // 2] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class MDC(nn.Module):
    """Multiple dilated convolution module: 1×1 conv, then 0/1/2 stacked dilated 3×3 convs in
    three sub-branches, concatenated, fused by a 1×1 conv, plus a skip."""

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        def dconv() -> nn.Conv2d:
            return nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)
        self.inp = nn.Sequential(nn.Conv2d(width, width, 1), nn.ReLU(inplace=True))
        self.one = nn.Sequential(dconv(), nn.ReLU(inplace=True))
        self.two = nn.Sequential(dconv(), nn.ReLU(inplace=True), dconv(), nn.ReLU(inplace=True))
        self.fuse = nn.Conv2d(3 * width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.inp(x)
        return x + self.fuse(torch.cat([t, self.one(t), self.two(t)], dim=1))


def ring_mean(y: torch.Tensor) -> torch.Tensor:
    """Mean of each pixel's 8 neighbours (edge-replicated), per channel; the pixel itself is left out."""
    c = y.shape[1]
    k = torch.ones(c, 1, 3, 3, dtype=y.dtype, device=y.device) / 8
    k[:, :, 1, 1] = 0
    return F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), k, groups=c)


class DBSN(nn.Module):
    """Blind-spot network returning μ (N,C,H,W) and the Cholesky factor of Σμ (N,H,W,C,C)."""

    def __init__(self, config: DBSNConfig = DBSNConfig()) -> None:
        super().__init__()
        self.config = config
        c, w, n = config.channels, config.width, config.modules
        self.head = nn.Sequential(nn.Conv2d(c, w, 1), nn.ReLU(inplace=True))
        self.branch3 = nn.Sequential(MaskedConv2d(w, w, 3), nn.ReLU(inplace=True), *[MDC(w, 2) for _ in range(n)])
        self.branch5 = nn.Sequential(MaskedConv2d(w, w, 5), nn.ReLU(inplace=True), *[MDC(w, 3) for _ in range(n)])
        self.tail = nn.Sequential(nn.Conv2d(2 * w, w, 1), nn.ReLU(inplace=True), nn.Conv2d(w, w, 1),
                                  nn.ReLU(inplace=True), nn.Conv2d(w, c + cholesky_params(c), 1))
        self.sigma_offset = SIGMA_MU_START[config.sigma_mu_start]
        if config.sigma_mu_start == "small":
            with torch.no_grad():
                self.tail[-1].weight[c:].zero_()
                self.tail[-1].bias[c:].zero_()

    def forward(self, y: torch.Tensor, hold_mean: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """μ and the Cholesky factor of Σμ. With hold_mean, Σμ is computed from detached features, so a
        loss on Σμ trains only Σμ's output weights and cannot move μ (fit's phase with μ held)."""
        f = self.head(y)
        h = self.tail[:-1](torch.cat([self.branch3(f), self.branch5(f)], dim=1))
        w, b, c = self.tail[-1].weight, self.tail[-1].bias, self.config.channels
        out_mu = F.conv2d(h, w[:c], b[:c])
        out_sigma = F.conv2d(h.detach() if hold_mean else h, w[c:], b[c:])
        mu = out_mu + ring_mean(y) if self.config.ring_skip else out_mu
        return mu, tril_from_params(out_sigma, c, offset=self.sigma_offset)


def build_dbsn(channels: int = 3, arch: str = "small") -> DBSN:
    return DBSN(DBSNConfig(channels=channels, **ARCHS[arch]))


class GroupScale(nn.Module):
    """Σμ per Bayer group: a learned per-group, per-channel scale of its Cholesky factor's rows (log-parametrised,
    starting at 1). Real mode's D-BSN sees the sub-images of all four Bayer sites alike, but its error differs by
    site (a channel sampled there is less predictable than one interpolated from neighbours); without this the
    group-specific noise model, the only group-aware part, takes that difference into Σn."""

    def __init__(self, groups: int, channels: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(groups, channels))

    def forward(self, L: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """(N,H,W,C,C) factors, (N,) group indices → rows scaled: Σμ → D Σμ D with D = diag(scale of the group)."""
        return L * self.log_scale[groups].exp()[:, None, None, :, None]
