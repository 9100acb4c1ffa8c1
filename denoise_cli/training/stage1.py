"""Stage 1's networks and what they do together: D-BSN's blind-spot estimate N(μ, Σμ) and CNNest's noise Σn, the
training loss, the reference-free score on held-out strips, the fusion of photo and estimate, and denoising whole
photos (pixel-shuffled in real mode, then guided-filtered)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..inference.tiles import tiled
from ..models.cholesky import covariance
from ..models.dbsn import ARCHS, DBSN, DBSNConfig, GroupScale
from ..noise.cnnest import NoiseModel
from ..noise.levels import NoiseLevels
from . import parallel
from .fit_config import FitConfig
from .guided_filter import guided_filter
from .likelihood import bayes_fusion, constrained_nll, gaussian_nll
from .local_fusion import local_fusion
from .patches import random_patches
from .pixel_shuffle import FACTOR, bayer_groups, pad_to_multiple, pd_down, pd_up
from .self_score import psnr_of_mse, sure_fusion


class Objective(torch.nn.Module):
    """Stage 1's training loss as one module over D-BSN, the noise model and Σμ's scale, so that
    DistributedDataParallel can wrap it (training.parallel)."""

    def __init__(self, stage: "Stage1") -> None:
        super().__init__()
        self.parts = torch.nn.ModuleDict(stage.modules)
        self.stage = stage

    def forward(self, y: torch.Tensor, groups: torch.Tensor, progress: float) -> torch.Tensor:
        return self.stage.loss(y, groups, progress)


class Stage1:
    """D-BSN + noise model, for training batches and for denoising whole images."""

    def __init__(self, cfg: FitConfig, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.dbsn = DBSN(DBSNConfig(cfg.channels, **ARCHS[cfg.arch], ring_skip=cfg.ring_skip,
                                     sigma_mu_start=cfg.sigma_mu_start)).to(device)
        self.noise = NoiseModel(cfg.channels, cfg.groups, cfg.noise_cov == "diagonal").to(device)
        self.mu_scale = GroupScale(cfg.groups, cfg.channels).to(device) if cfg.group_sigma_mu else None
        self.fusion = "bayes" if cfg.fusion == "auto" else cfg.fusion  # "auto" is settled by choose_fusion
        self.levels: NoiseLevels | None = None  # the photos' noise level function, which local fusion needs

    @property
    def fusions(self) -> tuple[str, ...]:
        """The fusions this run may end with."""
        return ("bayes", "local") if self.cfg.fusion == "auto" else (self.cfg.fusion,)

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"dbsn": self.dbsn, "noise": self.noise, **({"mu_scale": self.mu_scale} if self.mu_scale is not None else {})}

    def sigma_mu(self, l_mu: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Σμ from D-BSN's factor, scaled per group when the config asks for it."""
        return covariance(self.mu_scale(l_mu, groups) if self.mu_scale is not None else l_mu)

    def sample(self, images: list[np.ndarray], rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch of (sub-)images and their noise-model group: under torchrun this rank's slice of the
        global batch, which every rank draws alike (training.parallel)."""
        cfg, ranks = self.cfg, parallel.world()
        if cfg.mode == "real":
            crops = random_patches(images, cfg.patch * FACTOR, max(1, cfg.batch * ranks // (FACTOR * FACTOR)), rng,
                                   augment=False, align=2)
            y, groups = pd_down(crops), bayer_groups(crops.shape[0])
        else:
            y = random_patches(images, cfg.patch, cfg.batch * ranks, rng)
            groups = torch.zeros(y.shape[0], dtype=torch.long)
        return parallel.my_share(y).to(self.device), parallel.my_share(groups).to(self.device)

    def loss(self, y: torch.Tensor, groups: torch.Tensor, progress: float) -> torch.Tensor:
        """Phase A: blind-spot MSE for μ. Phase B: μ held (only the MSE trains it; the likelihood trains
        the noise model and Σμ's output layer). Phase C: the likelihood for everything, at a 10× lower rate."""
        if progress < self.cfg.phase_b:
            return F.mse_loss(self.dbsn(y)[0], y)
        hold = progress < self.cfg.phase_c
        mu, l_mu = self.dbsn(y, hold_mean=hold)
        sigma_n = covariance(self.noise(y, groups))
        nll = gaussian_nll if self.cfg.likelihood == "exact" else constrained_nll
        if hold:
            return nll(y, mu.detach(), self.sigma_mu(l_mu, groups), sigma_n) + F.mse_loss(mu, y)
        return nll(y, mu, self.sigma_mu(l_mu, groups), sigma_n)

    def holdout_rows(self) -> int:
        """Height of the held-out bands the score is taken on (at least a training crop's side)."""
        return self.cfg.patch * FACTOR if self.cfg.mode == "real" else 2 * self.cfg.patch

    @torch.no_grad()
    def scores(self, crops: list[np.ndarray], levels: NoiseLevels) -> dict[str, float]:
        """Estimated PSNR (dB) of each fusion's output on held-out bands, by SURE (training.self_score); in real mode
        on the pixel-shuffled sub-images, before the guided filter. The risk is taken under the photos' own noise
        level function (:func:`score_levels`), the same for every checkpoint: the noise model changes as it learns,
        and SURE under its own moving estimate ranked checkpoints by how it misread the noise rather than by
        quality."""
        totals, count = dict.fromkeys(self.fusions, 0.0), 0
        for crop in crops:
            y = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None].to(self.device)
            if self.cfg.mode == "real":
                y, groups = pd_down(pad_to_multiple(y)[0]), bayer_groups(1).to(self.device)
            else:
                groups = torch.zeros(1, dtype=torch.long, device=self.device)
            mu, l_mu = self.dbsn(y)
            if "bayes" in totals:
                totals["bayes"] += float(sure_fusion(y, mu, self.sigma_mu(l_mu, groups),
                                                     lambda t: covariance(self.noise(t, groups)), self.cfg.gamma,
                                                     truth=levels.covariance(y)).sum())
            if "local" in totals:
                var = levels.variance(y)
                x, div = local_fusion(y, mu, var)
                totals["local"] += float(((x - y) ** 2 - var + 2 * var * div).sum())
            count += y.numel()
        return {k: psnr_of_mse(v / count) for k, v in totals.items()}

    def score(self, crops: list[np.ndarray], levels: NoiseLevels) -> float:
        """The self-score of a checkpoint: the best of its fusions' :meth:`scores`."""
        return max(self.scores(crops, levels).values())

    def choose_fusion(self, crops: list[np.ndarray], levels: NoiseLevels) -> dict[str, float]:
        """Settle the fusion (the self-score's best) and keep the noise level function; returns the scores."""
        self.levels = levels
        scores = self.scores(crops, levels)
        self.fusion = max(scores, key=scores.get)
        return scores

    @torch.no_grad()
    def fuse(self, y: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        return self._fused(y, groups, *self.dbsn(y))

    def _fused(self, y: torch.Tensor, groups: torch.Tensor, mu: torch.Tensor, l_mu: torch.Tensor) -> torch.Tensor:
        """x̂ by the chosen fusion, from D-BSN's output for y."""
        if self.fusion == "local":
            if self.levels is None:
                raise ConfigError("local fusion needs the photos' noise level function (Stage1.levels)")
            return local_fusion(y, mu, self.levels.variance(y))[0]
        sigma_n = self.cfg.gamma * covariance(self.noise(y, groups))
        return bayes_fusion(y, mu, self.sigma_mu(l_mu, groups), sigma_n)

    @torch.no_grad()
    def _apply(self, pixels: np.ndarray, fn) -> np.ndarray:
        """``fn(y, groups)`` on one H×W×C image in [0,1], through the pixel shuffle in real mode."""
        self.dbsn.eval()
        self.noise.eval()
        y = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None].to(self.device)
        if self.cfg.mode == "real":
            yp, (h, w) = pad_to_multiple(y)
            x = pd_up(fn(pd_down(yp), bayer_groups(1).to(self.device)))[..., :h, :w]
        else:
            x = fn(y, torch.zeros(1, dtype=torch.long, device=self.device))
        return x[0].clamp(0, 1).cpu().numpy().transpose(1, 2, 0)

    def denoise_array(self, pixels: np.ndarray) -> np.ndarray:
        """Stage-1 output x̂ for one H×W×C image in [0,1] (no guided filter)."""
        return self._apply(pixels, self.fuse)

    def denoise(self, pixels: np.ndarray, tile: int = 512, overlap: int = 64) -> np.ndarray:
        """Stage-1 output for a whole image: tiled (tiles aligned to the pixel-shuffle grid), then
        in real mode the guided filter (radius 1, ε 0.01)."""
        return self._guided(_whole(self.denoise_array, pixels, tile, overlap), pixels)

    def blind_mean(self, pixels: np.ndarray, tile: int = 512, overlap: int = 64) -> np.ndarray:
        """D-BSN's mean μ for a whole image, before any fusion: each pixel predicted without seeing it, so y − μ holds
        all of its noise (what the correlated noise model is read from)."""
        return _whole(lambda p: self._apply(p, lambda y, _: self.dbsn(y)[0]), pixels, tile, overlap)

    def denoise_with_mean(self, pixels: np.ndarray, tile: int = 512, overlap: int = 64
                          ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`denoise` and :meth:`blind_mean` from one D-BSN pass (fit needs both for every photo)."""
        def both(y: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
            mu, l_mu = self.dbsn(y)
            return torch.cat([self._fused(y, groups, mu, l_mu), mu], 1)
        c = pixels.shape[2]
        out = _whole(lambda p: self._apply(p, both), pixels, tile, overlap, 2 * c)
        return self._guided(out[..., :c], pixels), out[..., c:]

    def _guided(self, x: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        """In real mode, the guided filter that removes the pixel shuffle's faint checkerboard; else x itself."""
        if self.cfg.mode != "real":
            return x
        return np.clip(guided_filter(x, x if self.cfg.guide == "self" else pixels, 1, 0.01), 0, 1)


def _whole(fn, pixels: np.ndarray, tile: int, overlap: int, channels: int | None = None) -> np.ndarray:
    """``fn`` (an H×W×C image → an array) on a whole image, tiled when it is larger than one tile."""
    return tiled(fn, pixels, tile, overlap, channels) if max(pixels.shape[:2]) > tile else fn(pixels)
