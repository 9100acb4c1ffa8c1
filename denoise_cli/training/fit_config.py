"""What defines a `fit` run: its settings (FitConfig, saved as config.json and reused on resume), the defaults that
follow from the photos, and the names of the files a finished run holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from ..io import Photo
from .runs import Run

CORRELATED_FILE = "correlated_noise.safetensors"
REPORT_FILE = "noise_report.json"  # real mode: the spatially correlated model distill draws from
PIPELINE_FILE = "camera_pipeline.json"  # real colour mode: the camera pipeline calibrated from the photos
PHASE_B, PHASE_C = 0.4, 0.7  # default fractions of the budget where the likelihood phases start
Mode = Literal["real", "synthetic"]


@dataclass
class FitConfig:
    """Everything that defines a fit run (saved as config.json; resume reuses it)."""

    mode: Mode
    channels: int
    arch: str = "small"
    patch: int = 48  # pixels per side (sub-image side in real mode, whose crops are FACTOR× larger)
    batch: int = 8
    lr: float = 1e-3
    seed: int = 0
    gamma: float = 1.0  # Σn scale in Bayes fusion (authors: 0.9–1.0)
    guide: Literal["self", "noisy"] = "noisy"  # guided-filter guide in real mode (the noisy photo measured better)
    ring_skip: bool = True  # D-BSN μ = neighbour mean + residual
    # Σn without or with cross-channel terms; None: diagonal, except full with eq. 8 in real mode (with the exact
    # likelihood a diagonal Σn read camera noise closer and denoised better)
    noise_cov: Literal["full", "diagonal"] | None = None
    phase_b: float = PHASE_B  # budget fraction where phase B (likelihood, μ held) starts
    phase_c: float = PHASE_C  # budget fraction where phase C (joint, lr/10) starts
    # the noise model's learning rate as a multiple of D-BSN's (higher multiples cost stage 1 and read the noise low
    # at clean images)
    noise_lr: float = 1.0
    # "constrained": the paper's eq. 8; "exact": log|Σμ+Σn| itself (likelihood.gaussian_nll). None: exact in real mode,
    # where D-BSN's error on the sub-images is as large as the noise or larger and eq. 8 would count it as noise;
    # constrained in synthetic mode
    likelihood: Literal["constrained", "exact"] | None = None
    group_sigma_mu: bool | None = None  # Σμ scaled per Bayer group (models.dbsn.GroupScale); None: real mode + exact
    # Σμ at the start of phase B (models.dbsn.SIGMA_MU_START). None: small in real mode (starting large let the exact
    # likelihood's Σn collapse), large in synthetic mode
    sigma_mu_start: Literal["large", "small"] | None = None
    # how x̂ combines y and μ: eq. 9's Bayes fusion, local fusion (training.local_fusion), or whichever the self-score
    # rates higher on the held-out bands once training ends
    fusion: Literal["auto", "bayes", "local"] = "auto"

    def __post_init__(self) -> None:
        if not (self.lr > 0 and self.noise_lr > 0 and self.gamma >= 0):
            raise ConfigError(f"learning rates must be positive and gamma ≥ 0 (lr {self.lr:g}, noise lr ×{self.noise_lr:g}, "
                              f"gamma {self.gamma:g})")
        if self.likelihood is None:
            self.likelihood = "exact" if self.mode == "real" else "constrained"
        if self.noise_cov is None:
            self.noise_cov = "full" if self.mode == "real" and self.likelihood == "constrained" else "diagonal"
        if self.group_sigma_mu is None:
            self.group_sigma_mu = self.mode == "real" and self.likelihood == "exact"
        if self.sigma_mu_start is None:
            self.sigma_mu_start = "small" if self.mode == "real" else "large"

    @property
    def groups(self) -> int:
        return 4 if self.mode == "real" else 1


def auto_mode(photos: list[Photo]) -> tuple[Mode, int]:
    """Colour photos → real mode (demosaicked noise); gray → synthetic mode."""
    channels = 3 if any(p.channels == 3 for p in photos) else 1
    return ("real" if channels == 3 else "synthetic"), channels


def config_for(photos: list[Photo], mode: str = "auto", **settings) -> FitConfig:
    """The FitConfig of a new run on these photos: the mode from their channels unless given ("real" or
    "synthetic"); every other setting as given, None meaning the mode's default."""
    auto, channels = auto_mode(photos)
    return FitConfig(mode=auto if mode == "auto" else mode, channels=channels,
                     **{k: v for k, v in settings.items() if v is not None})


def describe(cfg: FitConfig) -> str:
    """The settings that shape a fit, in one line (for --verbose and the logs)."""
    return (f"{cfg.mode} mode, {cfg.channels} channel(s), D-BSN {cfg.arch}, patch {cfg.patch}, batch {cfg.batch}, "
            f"lr {cfg.lr:g}, {cfg.noise_cov} noise covariance (lr ×{cfg.noise_lr:g}), {cfg.likelihood} likelihood, "
            f"Σμ starting {cfg.sigma_mu_start}, phases at {cfg.phase_b:g}/{cfg.phase_c:g} of the budget, "
            f"{cfg.fusion} fusion")


def saved_config(run: Run) -> FitConfig:
    """The FitConfig a run was started with (older runs' settings migrated: run_config.migrate)."""
    return FitConfig(**{k: v for k, v in run.read_config().items() if k in FitConfig.__dataclass_fields__})
