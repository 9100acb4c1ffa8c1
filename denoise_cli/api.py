"""The library's front door: load a denoiser and apply it to arrays, denoise a batch of files, learn a camera's noise
(fit), train the fast model (distill) or both (adapt). The CLI parses, calls one of these and prints what they return.

Importing this module does not import torch: each function imports what it needs when it runs, so a batch is
planned (and bad inputs reported) before PyTorch loads."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Callable

import numpy as np

from .errors import ConfigError
from .inference.batch import STDIO, Result
from .inference.tiles import DEFAULT_OVERLAP
from .progress import SILENT, Reporter

if TYPE_CHECKING:
    from .inference.denoiser import Denoiser
    from .inference.raw import RawDenoiser



def load_denoiser(weights: str | os.PathLike | None = None, *, device: str = "auto",
                  precision: str = "auto", tile: int | None = None, overlap: int = DEFAULT_OVERLAP,
                  ensemble: bool = False, strength: float = 1.0) -> "Denoiser":
    """A ready :class:`Denoiser`: weights by registry name, path or hf:// address.

    None means the registry defaults: the colour default, plus the gray default for gray images
    (a colour model sees replicated gray as perfectly channel-correlated noise and keeps it).
    ``ensemble`` averages 8 passes over rotated/mirrored copies: a little better, 8 passes' time.
    ``strength`` (0–1) removes only that share of the estimated noise. ``precision`` "auto" is
    bf16 on CPUs with bf16 units and fp32 elsewhere (inference.devices.resolve_precision)."""
    from .inference.denoiser import Denoiser
    from .inference.devices import pick_device
    from .registry.checkpoint import load_model
    from .registry.weights import resolve, resolve_default_gray

    gray = None
    if weights is None and (gray_path := resolve_default_gray()) is not None:
        gray = load_model(gray_path)
    model = load_model(resolve(weights))
    if model.config.channels == 4:
        raise ConfigError(f"{weights} is a RAW model (it denoises a RAW file's Bayer planes): give it to "
                          "--raw-weights for camera RAW files")
    return Denoiser(model, pick_device(device), precision, tile, overlap, gray_model=gray, ensemble=ensemble,
                    strength=strength)


def load_raw_denoiser(weights: str | os.PathLike | None = None, *, device: str = "auto", precision: str = "auto",
                      tile: int | None = None, overlap: int = DEFAULT_OVERLAP, strength: float = 1.0) -> "RawDenoiser":
    """A ready RAW model (inference.raw.RawDenoiser): weights by registry name, path or hf:// address; None: the
    registry's RAW default. ConfigError for weights that are not a RAW model."""
    from .inference.denoiser import Denoiser
    from .inference.devices import pick_device
    from .inference.raw import RawDenoiser
    from .registry.checkpoint import load_model
    from .registry.weights import load_registry, resolve
    from .training.raw_adapt import learned_noise

    path = resolve(weights if weights is not None else load_registry().default_raw)
    model = load_model(path)
    if model.config.channels != 4 or getattr(model.config, "guides", 0) != 4:
        raise ConfigError(f"{weights} is not a RAW model (it denoises {model.config.channels}-channel images, not "
                          "four Bayer planes)")
    return RawDenoiser(Denoiser(model, pick_device(device), precision, tile, overlap, strength=strength),
                       learned_noise(path))


def _raw_choice(o: "BatchOptions", jobs, inner, raw_profiles: list):
    """(the model choice, the RAW model's name) for a batch: camera RAW files go to a RAW model — their camera's RAW
    profile where one matches, and otherwise the RAW model named by --raw-weights or, with --raw-domain, the
    registry's RAW default; without either they take the developed path. (inner, None) when no RAW file can go the
    RAW way. The named model is loaded here, so a wrong --raw-weights is a usage error before the batch starts."""
    from pathlib import Path

    from .inference.raw import RawFirst
    from .io import RAW_SUFFIXES
    from .registry.weights import load_registry

    if o.raw_domain is False or not any(j.source == STDIO or Path(j.source).suffix.lower() in RAW_SUFFIXES
                                        for j in jobs):
        return inner, None
    profiles = raw_profiles if o.raw_weights is None else []
    use_default = o.raw_domain is True or o.raw_weights is not None
    if not (use_default or profiles):
        return inner, None
    name = o.raw_weights or load_registry().default_raw
    if name is None and use_default:
        raise ConfigError("--raw-domain: the registry names no RAW model; give one with --raw-weights")

    def load_raw(spec: str | None) -> "RawDenoiser":
        return load_raw_denoiser(spec or name, device=o.device, precision=o.precision, tile=o.tile, overlap=o.overlap,
                                 strength=o.strength)

    chooser = RawFirst(inner, load_raw, name, profiles, use_default)
    if use_default:
        chooser.loaded[None] = load_raw(None)
    return chooser, name or "RAW profiles"


@lru_cache(maxsize=2)
def _cached(weights: str | None, device: str, ensemble: bool) -> "Denoiser":
    return load_denoiser(weights, device=device, ensemble=ensemble)


def denoise_image(image: np.ndarray, weights: str | os.PathLike | None = None, *, device: str = "auto",
                  ensemble: bool = False) -> np.ndarray:
    """Denoise one image array: uint8/uint16 or float in [0,1], H×W or H×W×C (C = 1 or 3).

    Returns the same dtype and shape. The denoiser is cached across calls.
    """
    arr = np.asarray(image)
    if arr.dtype == np.uint8 or arr.dtype == np.uint16:
        top = np.iinfo(arr.dtype).max
        pixels = arr.astype(np.float32) / top
    else:
        top = None
        pixels = arr.astype(np.float32)
    shaped = pixels[..., None] if pixels.ndim == 2 else pixels
    out = _cached(None if weights is None else str(weights), device, ensemble)(shaped).reshape(arr.shape)
    if top is None:
        return out.astype(arr.dtype, copy=False)
    return np.round(np.clip(out, 0, 1) * top).astype(arr.dtype)


@dataclass
class BatchOptions:
    """How a batch of files is denoised: where outputs go and what runs them (the `denoise` command's options)."""

    output: str | None = None  # a folder, "-" for stdout, or one file's name for a single input; None: beside inputs
    suffix: str | None = None  # added to output names; None: "_denoised" beside the inputs, none in a folder
    fmt: str | None = None  # png, tif or jpg; None: the input's own where it can be written
    weights: str | None = None  # registry name, file, run folder, hf://…, "auto" (camera profiles) or None
    device: str = "auto"
    precision: str = "auto"
    tile: int | None = None
    overlap: int = DEFAULT_OVERLAP
    ensemble: bool = False
    strength: float = 1.0
    recursive: bool = False
    overwrite: bool = False
    max_megapixels: float = 256.0
    shard: str | None = None  # "K/N" for job arrays
    skip_existing: bool = False
    raw_domain: bool | None = None  # camera RAW files: denoise the Bayer planes before demosaicking (True: with the
    # RAW default where no RAW profile matches; False: never; None: where a RAW profile matches or raw_weights is given)
    raw_weights: str | None = None  # the RAW model; None: the registry's RAW default

    def __post_init__(self) -> None:
        if self.skip_existing and self.overwrite:
            raise ConfigError("--skip-existing and --overwrite contradict each other: choose one")
        if not self.max_megapixels > 0:
            raise ConfigError(f"--max-pixels {self.max_megapixels:g}: expected a positive number of megapixels")
        if self.fmt:
            self.fmt = self.fmt.lower().replace("tiff", "tif").replace("jpeg", "jpg")


@dataclass
class BatchSummary:
    """What a batch did: one Result per file this process ran, the ones skipped because their output existed, the
    device, which weights ran, and whether the image went to stdout."""

    results: list[dict] = field(default_factory=list)
    skipped: int = 0
    device: str = "—"
    weights: dict = field(default_factory=dict)
    to_stdout: bool = False
    per_photo: bool = False  # camera profiles chose the model photo by photo
    nothing_to_do: bool = False
    other_rank: bool = False  # under torchrun, a rank other than 0: rank 0 reports for all

    @property
    def done(self) -> int:
        return sum(r["ok"] for r in self.results)

    @property
    def failed(self) -> int:
        return sum(not r["ok"] and not r["skipped"] for r in self.results)

    @property
    def skipped_all(self) -> int:
        """Outputs that existed: before the batch started, or finished by another run meanwhile."""
        return self.skipped + sum(r["skipped"] for r in self.results)

    @property
    def megapixels(self) -> float:
        return sum(r["megapixels"] for r in self.results if r["ok"])

    @property
    def seconds(self) -> float:
        return sum(r["denoise_seconds"] for r in self.results if r["ok"])


def denoise_batch(inputs: list[str], options: BatchOptions | None = None, *, reporter: Reporter = SILENT,
                  on_result: Callable[[Result], None] | None = None) -> BatchSummary:
    """Denoise files, folders or stdin ("-") as ``options`` say; one bad file never stops the batch. Each file's
    Result goes to ``on_result`` as it finishes; progress to ``reporter`` (task "denoise"). Under torchrun each
    process takes its own share and rank 0's summary holds everyone's. Raises ConfigError for settings that cannot
    work and StdoutClosed when the reader of stdout goes away."""
    from pathlib import Path

    from .inference.batch import gather, names_a_file, parse_shard, plan, read_ahead, skip_done
    from .inference.batch import shard as take_shard
    from .inference.distributed import torchrun_launch

    o = options or BatchOptions()
    launch = torchrun_launch()
    if o.shard and launch:
        raise ConfigError("--shard is for separate jobs; under torchrun each process takes its share by itself")
    if o.output not in (None, STDIO) and Path(o.output).exists() and not Path(o.output).is_dir() \
            and not names_a_file(o.output):
        raise ConfigError(f"-o {o.output} is a file: -o takes a folder, an image file name for a single input, or - "
                          "for stdout")
    items = gather(inputs, recursive=o.recursive, skip_suffix=o.suffix if o.suffix is not None else "_denoised")
    if not items:
        raise ConfigError("no images found in " + ", ".join(inputs))
    if sum(1 for s, _ in items if s == STDIO) > 1:
        raise ConfigError("'-' (stdin) can be given only once")
    if o.output == STDIO and len(items) > 1:
        raise ConfigError("-o - writes one image to stdout; give a single input")
    jobs = plan(items, output=o.output, suffix=o.suffix, fmt=o.fmt)  # the whole batch: every share plans the same
    share = parse_shard(o.shard) if o.shard else launch.shard if launch else None
    if share:
        jobs = take_shard(jobs, *share)
    skipped = []
    if o.skip_existing:
        jobs, skipped = skip_done(jobs)
    summary = BatchSummary(skipped=len(skipped), to_stdout=any(j.target == STDIO for j in jobs))
    if summary.to_stdout and sys.stdout is None:
        raise ConfigError("standard output is closed: redirect it to a file or a pipe, or use -o DIR")
    if summary.to_stdout and sys.stdout.isatty():
        raise ConfigError("refusing to write image data to a terminal; redirect stdout or use -o DIR")
    if not launch and (not jobs or all(j.error for j in jobs)):  # nothing (left) to do, or nothing can run: no model
        summary.nothing_to_do = not jobs
        for j in jobs:
            res = Result(j.source, j.target, ok=False, error=j.error)
            summary.results.append(res.to_dict())
            if on_result:
                on_result(res)
        return summary
    first = read_ahead(jobs[0], o.overwrite, int(o.max_megapixels * 1e6), o.skip_existing,
                       o.raw_domain is not False) if jobs else None
    return _run_jobs(jobs, first, o, launch, summary, reporter, on_result)


def _run_jobs(jobs, first, o: BatchOptions, launch, summary: BatchSummary, reporter: Reporter,
              on_result: Callable[[Result], None] | None) -> BatchSummary:
    """Load the model(s) (PyTorch loads here, while the first photo is read) and run the planned jobs."""
    # Photos are decoded and encoded on helper threads beside the network: OpenMP threads that sleep between parallel
    # regions instead of spinning leave them the cores. Read once, when PyTorch loads; a value the user set wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .inference.batch import run_batch
    from .inference.choice import ModelChoice
    from .registry.profiles import list_profiles
    from .registry.weights import used_weights

    if launch:
        from .inference.distributed import bind_local_gpu

        bind_local_gpu(launch)
        reporter = reporter if launch.rank == 0 else SILENT  # one progress bar: rank 0's

    def load(spec: str | None) -> "Denoiser":
        return load_denoiser(spec, device=o.device, precision=o.precision, tile=o.tile, overlap=o.overlap,
                             ensemble=o.ensemble, strength=o.strength)

    stored = list_profiles() if o.weights in (None, "auto") or o.raw_weights is None else []
    profiles = [p for p in stored if not p.raw] if o.weights in (None, "auto") else []
    per_photo = o.weights == "auto" or bool(profiles)  # per photo: its camera's profile, else the default
    denoiser = ModelChoice(load, profiles) if per_photo else load(o.weights)
    summary.per_photo = per_photo
    summary.weights = {"weights": "auto", "weights_gray": None} if per_photo else used_weights(o.weights)
    denoiser, raw_name = _raw_choice(o, jobs, denoiser, [p for p in stored if p.raw])
    if raw_name:
        summary.weights["weights_raw"] = raw_name
    reporter.start("denoise", len(jobs), "denoise")
    current = 0

    def on_start(i: int, weights: str | None) -> None:
        nonlocal current
        current = i
        reporter.update("denoise", completed=i, info=os.path.basename(jobs[i].source) + (f" · {weights}" if weights else ""))

    def on_tile(done: int, total: int) -> None:  # progress inside a large photo
        reporter.update("denoise", completed=current + done / total)

    try:
        for res in run_batch(denoiser, jobs, overwrite=o.overwrite, stdout_format=o.fmt or "png",
                             max_pixels=int(o.max_megapixels * 1e6), on_start=on_start, on_tile=on_tile, first=first,
                             skip_existing=o.skip_existing, sensor=bool(raw_name)):
            summary.results.append(res.to_dict())
            reporter.update("denoise", completed=len(summary.results))
            if on_result:
                on_result(res)
    finally:
        reporter.done("denoise")
    summary.device = str(denoiser.device or "—")
    if raw_name and not any(str(r.get("weights") or "").startswith("RAW") for r in summary.results):
        del summary.weights["weights_raw"]  # no file went the RAW way (none was a Bayer RAW file)
    return _gather(launch, summary) if launch else summary


def _gather(launch, summary: BatchSummary) -> BatchSummary:
    """Under torchrun: every rank's results at rank 0, in one summary; the other ranks' summaries say so."""
    from .inference.distributed import gather_to_rank0

    everyone = gather_to_rank0(launch, (summary.results, summary.skipped, summary.device))
    if everyone is None:
        summary.other_rank = True
        return summary
    summary.results = [r for part, _, _ in everyone for r in part]
    summary.skipped = sum(n for _, n, _ in everyone)
    summary.device = f"{launch.world} processes ({', '.join(sorted({d for _, _, d in everyone}))})"
    return summary


def check_run(path: str | os.PathLike, resume: bool, what: str, option: str) -> None:
    """A new run must not exist, a resumed one must (ConfigError naming ``option`` otherwise)."""
    from .training.runs import Run

    if Run(path).exists() and not resume:
        raise ConfigError(f"{what} {path} exists: add --resume to continue it, or choose another {option}")
    if resume and not Run(path).exists():
        raise ConfigError(f"--resume: there is no {what} at {path} to continue (leave out --resume to start one)")


@dataclass
class FitStart:
    """A fit about to run: its settings, the photos when a new run has read them (read once, for the settings and for
    training), and whether it continues an existing run (whose own settings then win)."""

    config: object  # training.fit_config.FitConfig
    photos: tuple | None
    continuing: bool


def start_fit(noisy_dir: str | os.PathLike, run: str | os.PathLike, *, resume: bool = False, mode: str = "auto",
              **settings) -> FitStart:
    """Check the run folder and settle a fit's settings: a resumed run's saved ones, else ``settings`` (FitConfig's
    fields; "auto" leaves one to the photos' mode) with the mode read from the photos."""
    from .training import parallel
    from .training.fit import load_noisy
    from .training.fit_config import config_for, saved_config
    from .training.runs import Run

    check_run(run, resume, "run", "--run")
    parallel.barrier()  # every rank has checked the run folder before rank 0 writes in it
    if Run(run).exists():
        return FitStart(saved_config(Run(run)), None, True)
    photos = load_noisy(noisy_dir)
    chosen = {k: None if v == "auto" and k != "fusion" else v for k, v in settings.items()}
    return FitStart(config_for(photos[1], mode, **chosen), photos, False)


def fit(noisy_dir: str | os.PathLike, run: str | os.PathLike, start: FitStart, budget, device, *,
        reporter: Reporter = SILENT):
    """Stage 1 as ``start`` settled it, within ``budget``: returns the finished FitRun (training.fit_run)."""
    from .training.fit import fit as run_fit
    from .training.runs import Run

    return run_fit(noisy_dir, Run(run), start.config, budget, device, photos=start.photos, reporter=reporter)


def start_distill(fit_run: str | os.PathLike, out: str | os.PathLike, *, resume: bool = False,
                  clean_dirs: list | None = None, noise_scale: str = "0.9:1.1", **settings):
    """Check the output folder and settle a distill's settings: a resumed run's saved ones (with the data's current
    locations), else ``settings`` (DistillConfig's fields). Returns (config, the fit run, whether it continues)."""
    from .training import parallel
    from .training.distill import DistillConfig, parse_noise_scale, saved_distill_config
    from .training.fit_run import FitRun
    from .training.runs import Run

    fitted = FitRun(fit_run)
    try:
        scale = parse_noise_scale(noise_scale)
    except ConfigError as e:
        raise ConfigError(f"--noise-scale: {e}") from None
    check_run(out, resume, "distill run", "--out")
    parallel.barrier()  # every rank has checked the output folder before rank 0 writes in it
    if Run(out).exists():  # resuming: the run's own settings win, as for fit
        return saved_distill_config(Run(out), fit_run=fit_run, clean_dir=clean_dirs or None), fitted, True
    return DistillConfig(fit_run=str(fit_run), clean_dir=clean_dirs or [], noise_scale=scale, **settings), fitted, False


def distill(config, out: str | os.PathLike, fitted, budget, device, *, precision: str = "fp32",
            reporter: Reporter = SILENT):
    """Stage 2 as ``start_distill`` settled it: returns the path of the model file."""
    from .training.distill import distill as run_distill
    from .training.runs import Run

    return run_distill(config, Run(out), budget, device, precision=precision, fit=fitted, reporter=reporter)


def adapted_already(run: str | os.PathLike, seconds: float, recipe: str = "photos") -> bool:
    """Whether an adapt run has nothing left to do within ``seconds`` (a larger budget continues it); for RAW files
    as for photos."""
    from .training import raw_adapt
    from .training.adapt import find_recipe, finished

    if raw_adapt.fitted_groups(run) is not None:
        return raw_adapt.finished(run, seconds)
    return finished(run, seconds, find_recipe(recipe).fit_share)


def adapt(noisy_dir: str | os.PathLike, clean_dirs: list, run: str | os.PathLike, seconds: float, device, *,
          precision: str = "fp32", recipe: str = "photos", reporter: Reporter = SILENT):
    """Fit then distill within one wall-time budget (training.adapt.Adapted: the noise report, the model, each stage's
    budget), distill training on what ``recipe`` names (training.adapt.RECIPES); a run interrupted before continues
    where it stopped."""
    from .training.adapt import adapt as run_adapt

    return run_adapt(noisy_dir, clean_dirs, run, seconds, device, precision=precision, recipe=recipe,
                     reporter=reporter)


def raw_folder(folder: str | os.PathLike) -> bool:
    """Whether a folder holds camera RAW files (all its images): `fit` and `adapt` then work on the sensor data."""
    from .training.raw_adapt import raw_folder as is_raw

    return is_raw(folder)


def fit_raw(noisy_dir: str | os.PathLike, run: str | os.PathLike, *, resume: bool = False,
            reporter: Reporter = SILENT):
    """The RAW fit: the sensor noise (a, b) of a folder of RAW files per camera and ISO, measured from the files alone
    and kept in RUN (training.raw_adapt.SensorGroup list). A run measured before is measured again only with
    ``resume``."""
    from .training.raw_adapt import fit_raw as measure, fitted_groups
    from .training.runs import Run

    if fitted_groups(run) is not None and not resume:
        raise ConfigError(f"run {run} exists: add --resume to measure again, or choose another --run")
    if Run(run).exists():
        raise ConfigError(f"{run} holds a fit of developed photos: choose another --run for RAW files")
    measure(noisy_dir, run, reporter)
    return fitted_groups(run)


def raw_fit_groups(run: str | os.PathLike):
    """What a RAW fit measured (a SensorGroup list), or None when ``run`` is not a RAW fit."""
    from .training.raw_adapt import fitted_groups

    return fitted_groups(run)


def distill_raw(fit_run: str | os.PathLike, clean_dirs: list, out: str | os.PathLike, budget, device, *,
                init: str | None = None, seed: int = 0, reporter: Reporter = SILENT):
    """The RAW distill: the RAW default fine-tuned on clean photos with the sensor noise a RAW fit measured; an
    existing ``out`` continues. Returns the model file."""
    from .training.raw_adapt import distill_raw as train

    return train(fit_run, clean_dirs, out, budget, device, init=init, seed=seed, reporter=reporter)


def store_profile(model: str | os.PathLike, name: str | None = None, camera: str | None = None,
                  isos: list[float] | None = None, replace: bool = False):
    """Store an adapted model (a distill or adapt run's model folder) as a camera profile; the camera and ISOs come
    from its fit's photos unless given. Returns the profile and how many cameras the photos named."""
    from .registry.profiles import add_profile
    from .training.adapted import adapted_model

    found = adapted_model(model)
    camera = camera or found.camera
    if not camera:
        raise ConfigError("no camera in the photos' EXIF: give --camera \"MAKE MODEL\" (and --iso)")
    name = name or "".join(c if c.isalnum() or c in "._-" else "-" for c in camera.lower()).strip("-")
    profile = add_profile(found.model, name=name, camera=camera, isos=list(isos or found.isos),
                          sigma_mid=found.sigma_mid, made_by=found.made_by, replace=replace)
    return profile, found.cameras_seen
