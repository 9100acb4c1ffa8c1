"""Local fusion of the noisy photo with D-BSN's blind-spot estimate, for when Σμ cannot be trusted.

Eq. 9's Bayes fusion weighs y against μ by the covariances D-BSN and the noise model learned. On real sRGB photos
that split is poorly identified: the likelihood only pins Σμ + Σn, and where μ's error dominates (pixel-shuffled
sub-images of textured photos) Σn comes out several times too small, so fusion keeps μ where it is wrong. Local
fusion measures μ's error where it is instead. The residual d = y − μ holds the noise (variance σ², independent of
μ, which never saw the pixel) plus μ's error, so over a small window the mean m of d² exceeds σ² by that error:

    x̂ = μ + w·d,   w = max(0, 1 − σ²/m),

the shrinkage that minimises SURE pixel by pixel (a local Wiener / James–Stein rule). σ² comes from the photos'
noise level function (noise.levels), not from the networks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

RADIUS = 2  # the window is (2·RADIUS+1)²: wide enough that m is steady, narrow enough to follow edges


def _window_mean(t: torch.Tensor, radius: int) -> torch.Tensor:
    mode = "reflect" if min(t.shape[-2:]) > radius else "replicate"
    return F.avg_pool2d(F.pad(t, (radius,) * 4, mode=mode), 2 * radius + 1, 1)


def local_fusion(y: torch.Tensor, mu: torch.Tensor, noise_var: torch.Tensor, radius: int = RADIUS
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """x̂ (N,C,H,W) from the noisy y, the blind-spot μ and the noise variance per pixel and channel, and the
    divergence ∂x̂/∂y of each pixel on itself (for SURE): w + 2σ²d²/(k·m²) where w > 0, with k the window's pixel
    count. The neighbours' μ also see the pixel; that small cross term is left out."""
    d = y - mu
    m = _window_mean(d * d, radius).clamp_min(1e-12)
    w = (1 - noise_var / m).clamp(0, 1)
    k = (2 * radius + 1) ** 2
    divergence = torch.where(w > 0, w + 2 * noise_var * d * d / (k * m * m), torch.zeros_like(w))
    return mu + w * d, divergence
