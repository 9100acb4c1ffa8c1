"""`fit`, `distill` and `adapt`: learn a camera's noise and a fast denoiser from the user's own noisy photos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from ..errors import ConfigError
from ._common import (DeviceOpt, IterationsOpt, RichReporter, TimeBudgetOpt, TrainPrecisionOpt, VerboseOpt, budget, err, flag, note_line, reports_errors, say, shown)

#: Fewer steps than these and a stage has barely started: the run says so at the end.
FEW_FIT_STEPS, FEW_DISTILL_STEPS = 1000, 2000


def _join(device: str, batch: int | None = None, lr: float | None = None):
    """This process's device. Under torchrun it joins the training group, ranks other than 0 print nothing, and rank
    0 says how the batch is shared."""
    from ..training import parallel

    dev = parallel.start(device)
    if not parallel.is_main():
        err.quiet = True
    elif parallel.world() > 1:
        line = f"{parallel.world()} processes on {dev.type} (DistributedDataParallel)"
        if batch:
            line += f", {batch} patches per step each, {batch * parallel.world()} in all"
        if lr:
            line += f", lr {lr:g}"
        say(line)
    return dev


def _length_note(run: Path, steps: int, few: int, stage: str, resume: bool = True) -> None:
    """Say at the end whether the stage had time enough: from its reference-free score, else from its step count.
    ``resume``: the command has --resume (adapt continues by being run again with a larger budget)."""
    from ..training.runs import Run
    from ..training.self_score import length_note

    note = length_note(Run(run).records())
    if note:
        longer = "a larger --time-budget, or --resume with one" if resume else "the same command with a larger --time-budget"
        more = f" ({longer})" if note.endswith("more time") else ""
        note_line(f"{stage}: {note}{more}.")
    elif steps < few:
        note_line(f"{stage} ran only {steps} steps, too few to learn much: the result is rough. Give it more time "
                  f"({'a larger --time-budget, or --resume with one' if resume else 'the same command with a larger --time-budget'}).")


def _seconds_text(seconds: float) -> str:
    """A duration as words: 3 seconds, 20 minutes, 1 h 30 min."""
    if seconds < 120:
        return f"{seconds:g} second{'s' if seconds != 1 else ''}"
    if seconds < 7200:
        return f"{seconds / 60:g} minutes"
    return f"{int(seconds // 3600)} h {round(seconds % 3600 / 60)} min"


def _budget_text(plan) -> str:
    """' for 20 minutes', ' for 500 steps' or both, as the budget was given."""
    parts = ([_seconds_text(plan.seconds)] if plan.seconds else []) + (
        [f"{plan.iterations} steps"] if plan.iterations else [])
    return " for " + " or ".join(parts) if parts else ""


def _store_or_hint(run: Path, profile: str | None, camera: str | None, iso: list[float] | None,
                   raw: bool = False) -> None:
    """After adapt: store the model as a camera profile when asked, else say how to use it."""
    from ..training import parallel

    files, option = ("RAWFILES", "--raw-weights") if raw else ("PHOTOS", "--weights")
    if profile and parallel.is_main():
        from .profiles import iso_text, store

        p = store(run / "model", profile, camera, iso, replace=True)
        say(f"stored as profile {p.name} ({p.camera}, {iso_text(p.isos)}): `denoise-cli denoise {files}` now uses it "
            f"for that camera's {'RAW files' if raw else 'photos'}")
    elif parallel.is_main():
        say(f"model {run / 'model' / 'model.safetensors'}; use it with `denoise-cli denoise {files} {option} "
            f"{run / 'model'}`, or store it as a camera profile with `denoise-cli profiles add {run / 'model'}`")


def _learned_line(report: dict) -> str:
    """What `fit` learned, in a photographer's terms: the noise level at mid-gray and how grainy (correlated) it is."""
    from ..noise.report import mid_gray

    sigma = mid_gray(report)
    groups = list(sigma.values())
    per_channel = [sum(g[c] for g in groups) / len(groups) for c in range(len(groups[0]))]
    names = ["R", "G", "B"] if len(per_channel) == 3 else ["gray"]
    line = "noise at mid-gray " + ", ".join(f"{n} {v:.1f}" for n, v in zip(names, per_channel)) + " (of 255)"
    jpeg = report.get("jpeg", {})
    if jpeg.get("quality"):
        colour = "full-resolution colour" if jpeg["subsampling"] == "4:4:4" else f"{jpeg['subsampling']} colour"
        line += f"; saved as JPEG quality {jpeg['quality']} with {colour} ({jpeg['photos']} of {jpeg['of']} photos)"
    corr = report.get("correlated", {}).get("correlations")
    if corr:
        h = sum(c[1] for c in corr["horizontal"]) / len(corr["horizontal"])
        line += f"; neighbouring pixels' noise correlates at {h:.2f} (0: fine grain, 1: blotches)"
    camera = report.get("pipeline")
    if camera:
        smoothing = [f"{what} over {camera[key]:.1f} px" for what, key in (("colour", "chroma_blur"),
                                                                            ("brightness", "luma_blur")) if camera[key]]
        line += ("; the camera's own noise reduction smooths " + " and ".join(smoothing) if smoothing
                 else "; no sign of in-camera noise reduction")
        if camera["sharpen"]:
            line += f", sharpening {camera['sharpen']:.1f}"
    return line


RunOpt = Annotated[Path, typer.Option("--run", "--run-dir", metavar="DIR", help="Run folder: settings, checkpoints, stage-1 images, the learned noise model and its report (under torchrun write --run-dir, as torchrun takes --run for its own --run-path).")]
NoisyArg = Annotated[Path, typer.Argument(metavar="NOISY_DIR", show_default=False, help="Folder of your noisy photos (any format denoise reads).")]
ResumeFitOpt = Annotated[bool, flag("--resume", help="Continue an existing run up to the given budget; a larger budget than before is a warm restart (lr ramped back up).")]
ModeOpt = Annotated[Literal["auto", "real", "synthetic"], typer.Option(help="real: camera photos (pixel-shuffled, Bayer groups, correlated noise); synthetic: independent per-pixel noise; auto: real for colour photos, synthetic for gray.")]
FitArchOpt = Annotated[Literal["small", "full"], typer.Option(help="Network size: small (trains on a CPU) or full (the paper's D-BSN width).")]
FitPatchOpt = Annotated[int, typer.Option(min=8, help="Training patch side (sub-image side in real mode).")]
FitBatchOpt = Annotated[int, typer.Option(min=1, help="Patches per step (sub-images per step in real mode).")]
FitLrOpt = Annotated[float, typer.Option(help="Adam learning rate (cosine decay; ×0.1 in the joint phase).")]
GammaOpt = Annotated[float, typer.Option(min=0.0, help="Scale of the noise covariance in Bayes fusion.")]
GuideOpt = Annotated[Literal["noisy", "self"], typer.Option(help="Guided-filter guide in real mode: the noisy input or the result itself.")]
RingOpt = Annotated[bool, typer.Option(help="D-BSN's mean starts from the 8 neighbours' mean (trains faster); --no-ring-skip is the paper's plain mean.")]
NoiseCovOpt = Annotated[Literal["auto", "full", "diagonal"], typer.Option(help="Noise covariance across channels: full, diagonal, or auto (diagonal; full with --likelihood constrained in real mode).")]
NoiseLrOpt = Annotated[float, typer.Option(help="The noise model's learning rate as a multiple of --lr.")]
LikelihoodOpt = Annotated[Literal["auto", "constrained", "exact"], typer.Option(help="constrained: the paper's eq. 8; exact: the full likelihood, which keeps the blind-spot network's own error out of the noise model; auto: exact in real mode, constrained in synthetic mode.")]
SigmaMuOpt = Annotated[Literal["auto", "small", "large"], typer.Option(help="The blind-spot network's uncertainty when the likelihood starts: small (the authors' start), large, or auto (small in real mode, large in synthetic mode).")]
FusionOpt = Annotated[Literal["auto", "bayes", "local"], typer.Option(help="How the result weighs your photo against the blind-spot estimate: bayes (the paper's eq. 9, by the learned uncertainties), local (by how far the two differ nearby, against the photos' measured noise level), or auto (whichever the self-score rates higher; the noise report names the choice).")]
SeedOpt = Annotated[int, typer.Option(help="Random seed for patches and initialisation.")]


@reports_errors("interrupted: checkpoint saved in {run}; continue with --resume")
def fit(noisy_dir: NoisyArg, run: RunOpt, time_budget: TimeBudgetOpt = None, iterations: IterationsOpt = None,
        resume: ResumeFitOpt = False, mode: ModeOpt = "auto", arch: FitArchOpt = "small", patch: FitPatchOpt = 48,
        batch: FitBatchOpt = 8, lr: FitLrOpt = 1e-3, gamma: GammaOpt = 1.0, guide: GuideOpt = "noisy",
        ring_skip: RingOpt = True, noise_cov: NoiseCovOpt = "auto", noise_lr: NoiseLrOpt = 1.0,
        likelihood: LikelihoodOpt = "auto", sigma_mu_start: SigmaMuOpt = "auto", fusion: FusionOpt = "auto",
        seed: SeedOpt = 0, device: DeviceOpt = "auto", verbose: VerboseOpt = False) -> None:
    """Stage 1: learn a denoiser and your camera's noise from noisy photos alone (no clean images).

    Writes RUN/denoised/ (stage-1 results), the learned noise model and RUN/noise_report.png (noise level against brightness, and how it is correlated). Ctrl-C saves a checkpoint; --resume continues.

    A strip of a few photos is held out of training and scored as it goes, without clean images: the estimated PSNR (SURE under the photos' measured noise level) is in the progress bar and RUN/metrics.jsonl. Fit keeps the best-scoring weights of its last phase and stops early once the score stops improving; the budget is the upper bound.
    """
    from .. import api
    from ..training import parallel
    from ..training.fit_config import describe

    if api.raw_folder(noisy_dir):
        return _fit_raw(noisy_dir, run, resume)
    plan = budget(time_budget, iterations)
    dev = _join(device, None if resume else batch, None if resume else lr)
    start = api.start_fit(noisy_dir, run, resume=resume, mode=mode, arch=arch, patch=patch, batch=batch, lr=lr,
                          seed=seed, gamma=gamma, guide=guide, ring_skip=ring_skip, noise_cov=noise_cov,
                          noise_lr=noise_lr, likelihood=likelihood, sigma_mu_start=sigma_mu_start, fusion=fusion)
    cfg = start.config
    kind = "colour photos, real-camera mode" if cfg.mode == "real" else \
        f"{'colour' if cfg.channels == 3 else 'gray'} images, per-pixel noise"
    count = f"{len(start.photos[1])} " if start.photos else ""
    say(f"{'Continuing' if start.continuing else 'Learning'} the noise of {count}{kind} in {run} on {dev}"
        f"{_budget_text(plan)} — Ctrl-C stops and saves; --resume continues.")
    if verbose:
        say(f"settings: {describe(cfg)}")
    with RichReporter() as reporter:
        fitted = api.fit(noisy_dir, run, start, plan, dev, reporter=reporter)
    say(f"done: {_learned_line(fitted.report)}.")
    if not fitted.cameras:
        note_line("no camera make or model in the photos' EXIF: a profile made from this run needs --camera and --iso")
    say(f"stage-1 images in {run / 'denoised'}; noise report {run / 'noise_report.png'}")
    _length_note(run, plan.step, FEW_FIT_STEPS, "fit")
    parallel.finish()


def _sensor_line(group) -> str:
    """One camera/ISO's measured sensor noise in a photographer's words: σ in the shadows and at mid-grey."""
    a, b = group.noise.a[0], group.noise.b[0]
    sigma = lambda x: 100 * (a * x + b) ** 0.5  # noqa: E731  (% of the white level)
    iso = f", ISO {group.iso:g}" if group.iso else ""
    return (f"{shown(group.camera)}{iso} ({group.files} file{'s' if group.files != 1 else ''}): noise {sigma(0.01):.2f} % "
            f"of white in the shadows, {sigma(0.18):.2f} % at mid-grey (a = {a:.3g}, b = {b:.3g})")


def _fit_raw(noisy_dir: Path, run: Path, resume: bool, hint: bool = True) -> None:
    """`fit` on RAW files: the sensor noise per camera and ISO, measured from the files (no network to train)."""
    from .. import api

    say(f"Measuring the sensor noise of the RAW files in {noisy_dir} (on the Bayer data, where it is a·x + b per "
        "pixel: nothing to train, --time-budget is not needed)")
    with RichReporter() as reporter:
        groups = api.fit_raw(noisy_dir, run, resume=resume, reporter=reporter)
    for g in groups:
        say(f"  {_sensor_line(g)}")
    say(f"done: kept in {run / 'sensor_noise.json'}" + (f"; next: `denoise-cli distill --fit {run} CLEAN_DIR` trains the "
                                                         "RAW model on it" if hint else ""))


def _distill_raw(fit_run: Path, clean_dir, out: Path, plan, device: str, seed: int, init: str = "auto",
                 hint: bool = True) -> None:
    from .. import api

    dev = _join(device)
    say(f"Fine-tuning the RAW model to the sensor noise measured in {fit_run}, in {out} on {dev}{_budget_text(plan)} — "
        "Ctrl-C stops and saves; --resume continues.")
    with RichReporter() as reporter:
        path = api.distill_raw(fit_run, clean_dir or [], out, plan, dev, seed=seed, reporter=reporter,
                               init=None if init == "auto" else init)
    say(f"done: {path}" + (f"; denoise your RAW files with it: `denoise-cli denoise RAWFILES --raw-weights {out}` "
                            "(each file gets the noise measured for its camera and ISO)" if hint else ""))


FitRunOpt = Annotated[Path, typer.Option("--fit", metavar="RUN", help="A finished `fit` run folder.")]
CleanArg = Annotated[Optional[list[Path]], typer.Argument(metavar="CLEAN_DIR", show_default=False, help="Folder(s) of clean images unrelated to your photos, for the synthesised-noise pairs; several are drawn from equally often, gray images are replicated to colour. Not needed when the pairs share is 1 (real mode's default).")]
OutOpt = Annotated[Optional[Path], typer.Option(metavar="DIR", help="Output run folder \\[default: RUN/model].")]
DistillArchOpt = Annotated[Literal["small", "full"], typer.Option(help="Network size: small (fast, embeddable) or full (the authors' MWCNN width; for a GPU).")]
ResumeDistillOpt = Annotated[bool, flag("--resume", help="Continue an existing distill run up to the given budget, with the run's own training settings.")]
PatchOpt = Annotated[int, typer.Option(min=8, help="Training patch side.")]
BatchOpt = Annotated[int, typer.Option(min=1, help="Patches per step (1/8 of them from your noisy photos).")]
LrOpt = Annotated[Optional[float], typer.Option(show_default=False, help="Adam learning rate (cosine decay) \\[default: 1e-3 for --arch small, 2.5e-4 for full].")]
ScaleOpt = Annotated[str, typer.Option(metavar="LO:HI", help="Scale the learned noise by d ~ U(LO, HI) per patch; 0:2 from a σ=25 fit gives a blind model for σ up to 50.")]
Stage1WeightOpt = Annotated[Optional[float], typer.Option(min=0.0, show_default=False, help="Weight λ of the (noisy photo, stage-1 result) pairs in the loss; 0: synthetic pairs only \\[default: 1 for a real-mode fit, 0.1 (the paper) otherwise].")]
PairsOpt = Annotated[Optional[float], typer.Option(min=0.0, max=1.0, metavar="SHARE", show_default=False, help="Share of each batch taken from your photos with their stage-1 results; the rest is clean images with synthesised noise \\[default: 1 for a real-mode fit (camera noise is correlated; see the README), 1/8 (the paper) otherwise].")]
NoiseModelOpt = Annotated[Literal["auto", "correlated", "cnnest", "pipeline"], typer.Option(help="Noise to train on: correlated (the fit's spatially correlated model of real photos), pipeline (the camera pipeline calibrated from the colour photos: sensor noise through demosaicking, colour, tone, noise reduction and JPEG), cnnest (the paper's per-pixel model), or auto: correlated where the fit has it.")]
PassesOpt = Annotated[int, typer.Option(min=1, help="cnnest only: read the noise model N times, each at the previous pass's noisy draw; 1 reads it at the clean image (the paper), 2 at a noisy one, like the photos it learned from.")]
KeepOpt = Annotated[Literal["best", "last"], typer.Option(help="best: the weights the self-score rates highest, stopping early once it stops improving; last: train the whole budget and keep the final weights, unscored (when the score cannot be trusted, e.g. a fit over photos from many cameras).")]
InitOpt = Annotated[str, typer.Option(metavar="WEIGHTS|auto|none", help="Start from these weights (a registry name, a file or a distill folder): fine-tunes a trained model to this fit's noise; auto: the shipped colour default for a small model from a real-mode fit, else none (random weights).")]


@reports_errors("interrupted: checkpoint saved; continue with --resume")
def distill(fit_run: FitRunOpt, clean_dir: CleanArg = None, out: OutOpt = None, arch: DistillArchOpt = "small",
            time_budget: TimeBudgetOpt = None, iterations: IterationsOpt = None, resume: ResumeDistillOpt = False,
            patch: PatchOpt = 64, batch: BatchOpt = 16, lr: LrOpt = None, noise_scale: ScaleOpt = "0.9:1.1",
            stage1_weight: Stage1WeightOpt = None, pairs_share: PairsOpt = None, noise_model: NoiseModelOpt = "auto",
            noise_passes: PassesOpt = 2, keep: KeepOpt = "best", seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
            init: InitOpt = "auto", device: DeviceOpt = "auto", precision: TrainPrecisionOpt = "fp32") -> None:
    """Stage 2: train a fast denoiser from the learned noise model and clean images.

    Writes OUT/model.safetensors (use it with `denoise --weights OUT`) and OUT/entry.toml, a weights.toml entry with its sha256 and provenance. Ctrl-C saves a checkpoint; --resume continues.

    Like fit, it scores itself on a held-out strip of your photos (estimated PSNR, Monte-Carlo SURE with the learned noise), keeps the best-scoring weights and stops early once the score stops improving.
    """
    from .. import api
    from ..training import parallel

    plan = budget(time_budget, iterations)
    out = out or fit_run / "model"
    if api.raw_fit_groups(fit_run) is not None:
        api.check_run(out, resume, "distill run", "--out")
        return _distill_raw(fit_run, clean_dir, out, plan, device, seed, init)
    dev = _join(device, None if resume else batch, None if resume else lr)
    cfg, fitted, continuing = api.start_distill(
        fit_run, out, resume=resume, clean_dirs=clean_dir, noise_scale=noise_scale, arch=arch, patch=patch, batch=batch,
        lr=lr, lam=stage1_weight, noisy_fraction=pairs_share, seed=seed, init=init, noise_passes=noise_passes,
        noise_model=noise_model, keep=keep)
    if continuing:
        say(f"resuming {out} with its saved settings (arch {cfg.arch}, patch {cfg.patch}, batch {cfg.batch}, "
            f"lr {cfg.lr:g}, noise scale {cfg.noise_scale[0]:g}:{cfg.noise_scale[1]:g}, stage-1 weight {cfg.lam:g})")
    say(f"Training the fast denoiser in {out} on {dev}{_budget_text(plan)} — Ctrl-C stops and saves; --resume "
        "continues.")
    with RichReporter() as reporter:
        path = api.distill(cfg, out, fitted, plan, dev, precision=precision, reporter=reporter)
    say(f"done: {path}; try `denoise-cli denoise PHOTO --weights {out}`")
    _length_note(out, plan.step, FEW_DISTILL_STEPS, "distill")
    parallel.finish()


AdaptRunOpt = Annotated[Path, typer.Option("--run", "--run-dir", metavar="DIR", help="Run folder (the fit in RUN, the model in RUN/model); under torchrun write --run-dir, as torchrun takes --run for its own --run-path.")]
AdaptCleanArg = Annotated[Optional[list[Path]], typer.Argument(metavar="CLEAN_DIR", show_default=False, help="Unrelated clean images, for fits whose distill uses synthesised noise (not needed for colour photos).")]
AdaptBudgetOpt = Annotated[str, typer.Option(metavar="DURATION", help="Total time: fit trains for 60 % of it (15 % with --train-on camera), distill for what is left after fit has denoised your photos.")]
ProfileOpt = Annotated[Optional[str], typer.Option(metavar="NAME", help="Also store the model as this camera profile, which `denoise` then picks by itself for the camera's photos (camera and ISOs from their EXIF).")]
CameraOpt = Annotated[Optional[str], typer.Option(metavar='"MAKE MODEL"', help="With --profile, for photos without EXIF: the camera.")]
IsoOpt = Annotated[Optional[list[float]], typer.Option("--iso", metavar="ISO", help="With --camera: the photos' ISO (repeat for several).")]
TrainOnOpt = Annotated[Literal["photos", "camera"], typer.Option(help="What the fast model trains on: photos, your photos with their stage-1 results; camera, the clean images of CLEAN_DIR rendered by the camera that fit calibrates to your photos (colour photos; fit then takes 15 % of the budget).")]


@reports_errors("interrupted: checkpoints saved in {run}; run the same command again to continue")
def adapt(run: AdaptRunOpt, noisy_dir: Annotated[Path, typer.Argument(metavar="NOISY_DIR", help="Your noisy photos.", show_default=False)],
          clean_dir: AdaptCleanArg = None, time_budget: AdaptBudgetOpt = "1h", profile: ProfileOpt = None,
          camera: CameraOpt = None, iso: IsoOpt = None, device: DeviceOpt = "auto",
          precision: TrainPrecisionOpt = "fp32", train_on: TrainOnOpt = "photos") -> None:
    """Adapt to a camera in one command: `fit` on your noisy photos, then `distill`; run again to continue.

    Then denoise with `denoise-cli denoise PHOTOS --weights RUN/model`.
    """
    from .. import api
    from ..training import parallel
    from ..training.runs import Run, parse_duration
    from ..training.self_score import against_start

    seconds = parse_duration(time_budget)
    if api.raw_folder(noisy_dir):
        _adapt_raw(run, noisy_dir, clean_dir, seconds, device)
        return _store_or_hint(run, profile, camera, iso, raw=True)
    dev = _join(device)
    if train_on == "camera" and not clean_dir:
        raise ConfigError("--train-on camera renders clean images with your camera's noise: give CLEAN_DIR")
    if api.adapted_already(run, seconds, train_on):
        say(f"{run} has adapted already within {_seconds_text(seconds)}: its model is {run / 'model'} (a larger "
            "--time-budget trains it further)")
        _store_or_hint(run, profile, camera, iso)
        return
    say(f"Adapting to the photos in {noisy_dir} for {_seconds_text(seconds)} on {dev} — Ctrl-C stops and saves; the "
        "same command continues.")
    with RichReporter() as reporter:
        done = api.adapt(noisy_dir, clean_dir or [], run, seconds, dev, precision=precision, recipe=train_on,
                         reporter=reporter)
    say(f"done: {_learned_line(done.report)}.")
    verdict = against_start(Run(run / "model").records())
    if verdict:
        say(f"the adapted model is {verdict}.")
    _store_or_hint(run, profile, camera, iso)
    _length_note(run, done.fit_budget.step, FEW_FIT_STEPS, "fit", resume=False)
    _length_note(run / "model", done.distill_budget.step, FEW_DISTILL_STEPS, "distill", resume=False)
    parallel.finish()


def _adapt_raw(run: Path, noisy_dir: Path, clean_dir, seconds: float, device: str) -> None:
    """`adapt` on RAW files: measure the sensor noise (seconds), then fine-tune the RAW model for the whole budget;
    run again with a larger budget to continue."""
    from .. import api
    from ..training.runs import Budget

    if not clean_dir:
        raise ConfigError("adapting to RAW files trains on clean photos taken back to sensor data: give CLEAN_DIR")
    if api.adapted_already(run, seconds):
        say(f"{run} has adapted already within {_seconds_text(seconds)} (a larger --time-budget trains it further)")
        return
    if api.raw_fit_groups(run) is None:
        _fit_raw(noisy_dir, run, resume=False, hint=False)
    _distill_raw(run, clean_dir, run / "model", Budget(None, seconds), device, seed=0, hint=False)
