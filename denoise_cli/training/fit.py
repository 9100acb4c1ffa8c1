"""Stage 1 (`fit`): learn a denoiser and the camera's noise from noisy images alone.

D-BSN predicts each pixel's clean value from its neighbours, N(μ, Σμ); CNNest predicts the noise
covariance Σn from the noisy value. Training is staged as in the authors' code, which is what
makes it stable: (A) μ alone by blind-spot MSE against y; (B) Σμ and Σn by the likelihood (the
paper's constrained eq. 8, or the exact one) with μ held; (C) everything jointly at a 10× lower rate. Bayes
fusion (eq. 9) gives the stage-1 output. Real photos are pixel-shuffled ×4 first (see pixel_shuffle.py),
with one noise model per Bayer group, and guided-filtered after upsampling. There D-BSN's error on
the small sub-images exceeds the camera noise and eq. 8's assumption |Σn| ≫ |Σμ| fails, so real mode
trains with the exact likelihood, Σμ scaled per Bayer group and starting small (see FitConfig).

Nothing here looks at clean images: stopping and the kept checkpoint follow a reference-free score (self_score).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .guided_filter import guided_filter
from ..inference.tiles import tiled
from ..io import Photo, list_images, read_named, to_channels, write_image
from ..models.cholesky import covariance
from .likelihood import bayes_fusion, constrained_nll, gaussian_nll
from .local_fusion import local_fusion
from ..noise.correlated import report_section, save_noise
from ..models.dbsn import ARCHS, DBSN, DBSNConfig, GroupScale
from ..noise.cnnest import NoiseModel
from ..noise.report import ImageSigma, build_report, plot
from .patches import random_patches
from .pixel_shuffle import FACTOR, bayer_groups, pad_to_multiple, pd_down, pd_up
from . import parallel
from .runs import Budget, Run
from .loop import train_loop
from ..noise.estimate import calibrated_noise
from ..noise.levels import NoiseLevels
from .self_score import ScoreLog, holdout, psnr_of_mse, sure_fusion

if TYPE_CHECKING:
    from .fit_run import FitRun

CORRELATED_FILE = "correlated_noise.safetensors"
REPORT_FILE = "noise_report.json"  # real mode: the spatially correlated model distill draws from
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


def load_noisy(folder: str | Path) -> tuple[list[Path], list[Photo]]:
    """Read every image of the folder (any format the package reads)."""
    files = list_images(folder)
    return files, [read_named(f) for f in files]


def camera_census(photos: list[Photo]) -> tuple[dict[str, list[float]], int]:
    """The cameras the photos' EXIF names, each with the ISOs seen, and how many photos name none."""
    census: dict[str, set[float]] = {}
    unknown = 0
    for p in photos:
        cam = p.camera
        if not cam.known:
            unknown += 1
            continue
        census.setdefault(cam.name, set()).update([cam.iso] if cam.iso else [])
    return {k: sorted(v) for k, v in census.items()}, unknown


def blind_sigma(images: list[np.ndarray], mode: Mode) -> float:
    """Median MAD noise estimate (0–255) over the images, on pixel-shuffled sub-images in real
    mode (where neighbouring pixels' noise is correlated). Uses the noisy images only."""
    from ..evaluation.metrics import estimate_sigma

    est = [estimate_sigma(img[::FACTOR, ::FACTOR] if mode == "real" else img) for img in images]
    return float(np.median(est))


def score_levels(images: list[np.ndarray], mode: Mode) -> NoiseLevels:
    """The noise level function the self-score takes its risk under, from the noisy images alone; in real mode on
    their pixel-shuffled sub-images, where stage 1 works and the score is taken."""
    if mode == "real":
        images = [im[i::FACTOR, j::FACTOR] for im in images for i in range(FACTOR) for j in range(FACTOR)]
    return NoiseLevels.estimate(images)


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


def fit(noisy_dir: str | Path, run: Run, cfg: FitConfig | None, budget: Budget, device: torch.device, *,
        show_progress: bool = True, on_image=None, on_score=None) -> "FitRun":
    """Train (or resume) a run, then write x̂ for every image, the noise models and the report; returns the finished
    run for distill, photos and stage 1 in hand. A new run folder that fails before its first checkpoint is removed
    again."""
    with run.removed_on_failure():
        return _fit(noisy_dir, run, cfg, budget, device, show_progress=show_progress, on_image=on_image,
                    on_score=on_score)


def _fit(noisy_dir: str | Path, run: Run, cfg: FitConfig | None, budget: Budget, device: torch.device, *,
         show_progress: bool, on_image, on_score) -> "FitRun":
    files, photos = load_noisy(noisy_dir)
    if cfg is None and run.exists():
        cfg = saved_config(run)  # resuming: the run's own settings win
    elif cfg is None:
        mode, channels = auto_mode(photos)
        cfg = FitConfig(mode=mode, channels=channels)
    images = [to_channels(p.pixels, cfg.channels) for p in photos]
    torch.manual_seed(cfg.seed)
    stage = Stage1(cfg, device)
    denoiser = [p for name, m in stage.modules.items() if name != "noise" for p in m.parameters()]
    opt = torch.optim.Adam([{"params": denoiser},
                            {"params": stage.noise.parameters(), "lr_mult": cfg.noise_lr}], lr=cfg.lr)
    reached = 0.0
    if run.exists():
        budget.resume(*run.load(stage.modules, opt))
        reached = run.reached_progress()
    else:
        stage.noise.init_sigma(blind_sigma(images, cfg.mode))  # where a new noise model starts
    census, unknown = camera_census(photos)
    run.write_config({"stage": "fit", "noisy_dir": str(noisy_dir), **asdict(cfg), "cameras": census,
                      "photos_without_camera": unknown})
    rng = np.random.default_rng([cfg.seed, budget.step])

    def phase_progress(p: float) -> float:
        """Where the phases stand: never behind where the run got to, so extending a finished run's
        budget continues phase C instead of going back to B's held μ and 10× higher lr."""
        return max(p, reached)

    train_images, held = holdout(images, stage.holdout_rows(), align=2 * FACTOR if cfg.mode == "real" else 1)
    levels = score_levels(images, cfg.mode)  # the self-score's fixed reference noise

    objective = parallel.wrap(Objective(stage))

    def step_loss(_: int) -> torch.Tensor:
        y, groups = stage.sample(train_images, rng)
        return objective(y, groups, phase_progress(budget.progress))

    # the score counts from phase C on, when every part trains: before, the noise model has not learned yet
    train_loop(run, stage.modules, opt, step_loss, budget, cfg.lr, show_progress=show_progress,
               description="fit", lr_scale=lambda p: 0.1 if phase_progress(p) >= cfg.phase_c else 1.0,
               score=lambda: stage.score(held, levels), scores=ScoreLog(run.records(), counts_from=cfg.phase_c),
               on_score=on_score)

    from .fit_run import FitRun  # the hand-off to distill, with the photos and stage 1 already in memory

    if not parallel.is_main():  # rank 0 denoises the photos and writes the noise models; the others wait for them
        parallel.barrier()
        return FitRun(run.path)
    fusion_scores = stage.choose_fusion(held, levels)
    out_dir = run.path / "denoised"
    on_images = ImageSigma(stage.noise, device)
    estimates, means = [], []
    for f, photo, img in zip(files, photos, images):
        if cfg.mode == "real":  # μ too, for the correlated noise model below
            x, mu = stage.denoise_with_mean(img)
            means.append(mu)
        else:
            x = stage.denoise(img)
        on_images.add(img, x)
        estimates.append(x)
        if photo.channels != cfg.channels:
            x = to_channels(x, photo.channels)
        write_image(photo.with_pixels(x), out_dir / f"{f.stem}.png", overwrite=True)
        if on_image:
            on_image(f)
    report = build_report(stage.noise, device, on_images)
    report["fusion"] = {"chosen": stage.fusion, "scores_db": fusion_scores}
    report["noise_levels"] = levels.to_dict()
    if cfg.mode == "real":  # camera noise is spatially correlated: distill draws from a model that knows it
        correlated = calibrated_noise(list(zip(images, means)), cfg.channels, stage.blind_mean, seed=cfg.seed)
        save_noise(correlated, run.path / CORRELATED_FILE, source="fit: residuals of the blind-spot mean, calibrated")
        report["correlated"] = report_section(correlated)
    (run.path / REPORT_FILE).write_text(json.dumps(report, indent=2))
    plot(report, run.path / "noise_report.png")
    parallel.barrier()
    return FitRun(run.path, pairs=[np.concatenate([y, x], 2) for y, x in zip(images, estimates)], stage=stage)


def saved_config(run: Run) -> FitConfig:
    """The FitConfig a run was started with (older runs' settings migrated: run_config.migrate)."""
    return FitConfig(**{k: v for k, v in run.read_config().items() if k in FitConfig.__dataclass_fields__})
