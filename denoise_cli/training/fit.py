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
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..io import Photo, list_images, read_named, to_channels, write_image
from ..noise.correlated import report_section, save_noise
from ..noise.report import ImageSigma, build_report, plot
from .pixel_shuffle import FACTOR
from . import parallel
from .runs import Budget, Run
from .loop import train_loop
from ..noise.estimate import calibrated_noise
from ..noise.calibrate import SWEEPS, calibrate_photos, save_pipeline
from ..noise.levels import NoiseLevels
from .self_score import ScoreLog, holdout
from .fit_config import CORRELATED_FILE, PIPELINE_FILE, REPORT_FILE, FitConfig, Mode, auto_mode, saved_config
from .stage1 import Objective, Stage1
from .fit_run import FitRun
from ..progress import SILENT, Reporter


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


def jpeg_census(files: list[Path]) -> dict:
    """How the photos were saved, read exactly from their files: the most common JPEG quality and chroma subsampling
    and how many photos share them (none: not JPEGs). Part of what shapes a camera's noise (noise.pipeline)."""
    from collections import Counter

    from ..noise.jpeg_settings import jpeg_settings

    seen = Counter()
    for f in files:
        try:
            settings = jpeg_settings(f)
        except OSError:
            settings = None
        if settings:
            seen[settings] += 1
    if not seen:
        return {"photos": 0}
    (quality, subsampling), n = seen.most_common(1)[0]
    return {"quality": quality, "subsampling": subsampling, "photos": n, "of": len(files)}


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


def fit(noisy_dir: str | Path, run: Run, cfg: FitConfig | None, budget: Budget, device: torch.device, *,
        photos: tuple[list[Path], list[Photo]] | None = None, reporter: Reporter = SILENT,
        on_score=None) -> FitRun:
    """Train (or resume) a run, then write x̂ for every image, the noise models and the report; returns the finished
    run for distill, photos and stage 1 in hand. ``photos``: the folder's files and photos when the caller has read
    them already (load_noisy); the budget's clock starts once they are in memory. Progress goes to ``reporter``
    ("training", then "photos" while stage 1 denoises them). A new run folder that fails before its first checkpoint
    is removed again."""
    with run.removed_on_failure():
        files, photos_read = photos or load_noisy(noisy_dir)
        if cfg is None:
            cfg = saved_config(run) if run.exists() else FitConfig(*auto_mode(photos_read))
        images = [to_channels(p.pixels, cfg.channels) for p in photos_read]
        stage, held, levels = _train(noisy_dir, run, cfg, budget, device, photos_read, images, reporter, on_score)
        if not parallel.is_main():  # rank 0 denoises the photos and writes the noise models; the others wait
            parallel.barrier()
            return FitRun(run.path)
        return _finish(run, stage, cfg, files, photos_read, images, held, levels, device, reporter)


def _train(noisy_dir: str | Path, run: Run, cfg: FitConfig, budget: Budget, device: torch.device,
           photos: list[Photo], images: list[np.ndarray], reporter: Reporter, on_score
           ) -> tuple[Stage1, list[np.ndarray], NoiseLevels]:
    """Stage 1's training (phases A, B, C, scored on a held-out strip); returns the stage, the strip and the photos'
    noise levels (the score's reference)."""
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
        budget.resume(0, 0.0)  # the clock starts now, with the photos read
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
    train_loop(run, stage.modules, opt, step_loss, budget, cfg.lr, reporter=reporter,
               description="fit", lr_scale=lambda p: 0.1 if phase_progress(p) >= cfg.phase_c else 1.0,
               score=lambda: stage.score(held, levels), scores=ScoreLog(run.records(), counts_from=cfg.phase_c),
               on_score=on_score)
    return stage, held, levels


def stand_in_denoiser(device: torch.device = torch.device("cpu")):
    """The denoiser calibration makes its stand-in scenes with: the shipped colour default, trained on the prior
    over camera pipelines (noise.calibrate.stand_in_scene)."""
    from ..inference.denoiser import Denoiser
    from ..registry.checkpoint import load_model
    from ..registry.weights import resolve

    return Denoiser(load_model(resolve(None)), device).denoise


def _calibrate_pipeline(run: Run, images: list[np.ndarray], jpeg: dict, device: torch.device,
                        reporter: Reporter) -> dict | None:
    """Fit the camera pipeline (noise.calibrate) to the photos and write it to the run; its numbers for the report
    (None, and no file, for photos too small to measure)."""
    settings = (jpeg["quality"], jpeg["subsampling"]) if jpeg.get("photos") else None
    reporter.start("calibrate", SWEEPS, "camera pipeline")
    calibrated = calibrate_photos(images, jpeg=settings, on_step=lambda *_: reporter.update("calibrate", advance=1),
                                  denoise=stand_in_denoiser(device))
    reporter.done("calibrate")
    if calibrated is None:
        return None
    pipeline, info = calibrated
    if parallel.is_main():
        save_pipeline(pipeline, run.path / PIPELINE_FILE, measured=info["target"], model=info["model"],
                      distance=info["distance"])
    return pipeline.to_dict()


def _finish(run: Run, stage: Stage1, cfg: FitConfig, files: list[Path], photos: list[Photo], images: list[np.ndarray],
            held: list[np.ndarray], levels: NoiseLevels, device: torch.device, reporter: Reporter) -> FitRun:
    """After training: choose the fusion, denoise every photo into RUN/denoised/, estimate the correlated noise (real
    mode), write the noise report; the FitRun hands photos and stage 1 to distill in memory."""
    fusion_scores = stage.choose_fusion(held, levels)
    out_dir = run.path / "denoised"
    on_images = ImageSigma(stage.noise, device)
    estimates, means = [], []
    reporter.start("photos", len(files), "stage-1 images")
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
        reporter.update("photos", advance=1, info=f.name)
    reporter.done("photos")
    report = build_report(stage.noise, device, on_images)
    report["fusion"] = {"chosen": stage.fusion, "scores_db": fusion_scores}
    report["noise_levels"] = levels.to_dict()
    report["jpeg"] = jpeg_census(files)
    if cfg.mode == "real":  # camera noise is spatially correlated: distill draws from a model that knows it
        correlated = calibrated_noise(list(zip(images, means)), cfg.channels, stage.blind_mean, seed=cfg.seed)
        save_noise(correlated, run.path / CORRELATED_FILE, source="fit: residuals of the blind-spot mean, calibrated")
        report["correlated"] = report_section(correlated)
    if cfg.mode == "real" and cfg.channels == 3:
        camera = _calibrate_pipeline(run, images, report["jpeg"], device, reporter)
        if camera:
            report["pipeline"] = camera
    (run.path / REPORT_FILE).write_text(json.dumps(report, indent=2))
    plot(report, run.path / "noise_report.png")
    parallel.barrier()
    return FitRun(run.path, pairs=[np.concatenate([y, x], 2) for y, x in zip(images, estimates)], stage=stage)
