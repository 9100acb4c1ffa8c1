"""How noisy a photo is at each brightness, estimated from the noisy photos alone: a noise level function.

Per channel, the photos are cut into 2×2 blocks; a block's mean says how bright it is and its diagonal Haar detail
(a − b − c + d)/2 is nearly pure noise, with the variance of one pixel's noise, wherever the image is locally smooth.
The blocks are sorted into brightness bins of equal count and each bin's σ is the median absolute detail / 0.6745
(Donoho's robust rule, which edges barely move). Between bin centres σ is interpolated. It serves the self-score as a
fixed reference that does not depend on the networks being scored: one scalar σ for the whole photo misjudged
signal-dependent noise (bright areas noisier than dark), and the learned noise model changes as it trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MAD_TO_SIGMA = 1 / 0.6745
BINS = 16
MAX_BLOCKS = 4_000_000  # per channel; more photos than that are read on every k-th row of blocks
SMOOTH = 5  # side of the box the brightness of a pixel is read over, when a covariance is made for an image


@dataclass(frozen=True)
class NoiseLevels:
    """σ (0–1) at brightness ``centres`` (0–1), per channel: arrays of shape (C, bins)."""

    centres: np.ndarray
    sigmas: np.ndarray

    @classmethod
    def estimate(cls, images: list[np.ndarray], bins: int = BINS) -> "NoiseLevels":
        """The noise level function of H×W×C float images in [0,1] (all of the same channels)."""
        channels = images[0].shape[2]
        blocks = sum((im.shape[0] // 2) * (im.shape[1] // 2) for im in images)
        step = max(1, -(-blocks // MAX_BLOCKS))  # rows of blocks to step over, so memory stays bounded
        centres, sigmas = np.zeros((channels, bins)), np.zeros((channels, bins))
        for c in range(channels):
            mean, detail = [], []
            for img in images:
                x = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2, c].astype(np.float64)
                x = x.reshape(-1, 2, x.shape[1])[::step].reshape(-1, x.shape[1])
                a, b, cc, d = x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]
                mean.append(((a + b + cc + d) / 4).ravel())
                detail.append(np.abs(a - b - cc + d).ravel() / 2)
            m, h = np.concatenate(mean), np.concatenate(detail)
            order = np.argsort(m, kind="stable")
            for k, part in enumerate(np.array_split(order, bins)):  # equal-count bins
                centres[c, k] = np.median(m[part])
                sigmas[c, k] = np.median(h[part]) * MAD_TO_SIGMA
        return cls(centres, sigmas)

    def sigma_at(self, brightness: np.ndarray, channel: int) -> np.ndarray:
        """σ of ``channel`` at each brightness (interpolated; constant beyond the outer bins)."""
        return np.interp(brightness, self.centres[channel], self.sigmas[channel])

    def variance(self, y: torch.Tensor) -> torch.Tensor:
        """(N,C,H,W) noisy images → the noise variance of each pixel and channel (N,C,H,W), each pixel's brightness
        read as the mean of a SMOOTH×SMOOTH box of y around it (smooth enough that the noise barely moves it)."""
        pad = SMOOTH // 2
        mode = "reflect" if min(y.shape[-2:]) > pad else "replicate"
        local = F.avg_pool2d(F.pad(y.float(), (pad,) * 4, mode=mode), SMOOTH, 1).cpu().numpy()
        var = np.stack([self.sigma_at(local[:, c], c) ** 2 for c in range(y.shape[1])], 1)
        return torch.from_numpy(var).float().to(y.device)

    def covariance(self, y: torch.Tensor) -> torch.Tensor:
        """:meth:`variance` as (N,H,W,C,C) diagonal covariances."""
        return torch.diag_embed(self.variance(y).permute(0, 2, 3, 1))

    def to_dict(self) -> dict[str, list[list[float]]]:
        """JSON-ready form (the noise report keeps it, so a finished run denoises as it did)."""
        return {"centres": self.centres.tolist(), "sigmas": self.sigmas.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list[list[float]]]) -> "NoiseLevels":
        return cls(np.asarray(d["centres"], np.float64), np.asarray(d["sigmas"], np.float64))


def poisson_gaussian(levels: NoiseLevels, channel: int | None = None, lo: float = 0.02, hi: float = 0.9
                     ) -> tuple[float, float]:
    """The sensor noise (a, b) of variance a·x + b that fits a noise level function of RAW planes best (least squares
    on the variances of bins with brightness in [lo, hi], where clipping does not bend them); all channels pooled
    unless ``channel``. a and b are kept ≥ 0."""
    rows = range(levels.centres.shape[0]) if channel is None else [channel]
    x = np.concatenate([levels.centres[c] for c in rows])
    v = np.concatenate([levels.sigmas[c] ** 2 for c in rows])
    keep = (x >= lo) & (x <= hi)
    if keep.sum() < 2:
        keep = np.ones_like(x, bool)
    a, b = np.polyfit(x[keep], v[keep], 1)
    if b < 0:  # no read noise to speak of: a alone, through the origin
        a, b = float((x[keep] @ v[keep]) / (x[keep] @ x[keep])), 0.0
    return max(float(a), 0.0), max(float(b), 0.0)
