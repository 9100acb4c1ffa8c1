"""Stage 2 (`distill`): train a fast MWCNN from the learned noise model and unrelated clean images.

Pairs come from two sources (Wu et al. §3.1, eq. 1): clean patches x with noise synthesised by the
fitted CNNest, ỹ = x + L(x)·n₀ (L the Cholesky factor of Σn, so cross-channel correlation is
reproduced; in real mode per Bayer group through the same pixel-shuffle layout), and the noisy
photos y with their stage-1 results x̂y as targets. Loss: ‖CDN(ỹ) − x‖² + λ‖CDN(y) − x̂y‖², λ = 0.1.
As in the authors' code, 1/8 of each batch is noisy photos and the synthetic noise is scaled by
d ~ U(0.9, 1.1) per patch; a wider range, e.g. U(0, 2) from a σ=25 fit, makes a blind model for σ up
to 50. Synthesised noisy patches are clipped and rounded to 8 bits, like the photos they stand in for.
Unlike the paper, L is read by default at a noisy draw x + L(x)·n₀, not at the clean x (``noise_passes``).
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..registry.checkpoint import load_model, save_model
from ..errors import ConfigError
from ..io import read_rgb_folder
from ..noise.correlated import CorrelatedNoise
from ..noise.pipeline import CameraPipeline
from ..models.mwcnn import build_mwcnn
from .patches import ImagePool, random_patches
from .pixel_shuffle import FACTOR, bayer_groups, pd_down, pd_up
from .pipeline_default import render_batch
from . import parallel
from .runs import Budget, Run
from .loop import train_loop
from ..registry.weights import resolve
from ..registry.entry import file_fields, write_entry
from .stage1 import Stage1
from .fit_run import FitRun
from ..progress import SILENT, Reporter
from .self_score import ScoreLog, holdout, mc_sure, psnr_of_mse

#: Distill's scores count (for keeping the best weights and stopping) from this fraction of the budget on; before,
#: the learning rate is at its highest and the scores swing.
SCORE_FROM = 0.25


#: Adam's starting lr per MWCNN size when none is given: the full width (14 M parameters) stays near the identity
#: for thousands of steps at 1e-3 and trains at once at 2.5e-4.
DEFAULT_LR: dict[str, float] = {"small": 1e-3, "full": 2.5e-4}


#: The paper's stage 2: 1/8 of each batch from the noisy photos with their stage-1 results, weight 0.1.
PAPER = {"noisy_fraction": 0.125, "lam": 0.1}
#: Real photos: camera noise is spatially correlated and hard to synthesise faithfully; a model trained on the photos'
#: own stage-1 results, starting from the shipped colour default, follows stage 1 where one trained mostly on
#: synthesised noise falls short (docs/method.md), so real mode trains on the photos alone by default.
REAL_MODE = {"noisy_fraction": 1.0, "lam": 1.0}



NOISE_MODELS = ("auto", "correlated", "cnnest", "pipeline")


@dataclass
class DistillConfig:
    fit_run: str
    clean_dir: str | list[str]  # one folder, or several drawn from equally often (or none: the photos alone); a list
    # of paths is stored as str(s), one folder as a plain str as older runs saved it
    arch: str = "small"
    patch: int = 64
    batch: int = 16
    lr: float | None = None  # None: DEFAULT_LR[arch]; the resolved value is what config.json records
    lam: float | None = None  # weight of the (y, x̂y) stage-1 pairs; None: REAL_MODE["lam"] or the paper's 0.1
    noisy_fraction: float | None = None  # share of each batch from the noisy photos; None: REAL_MODE's or 1/8
    noise_scale: tuple[float, float] = (0.9, 1.1)  # synthetic noise scaled by d ~ U(lo, hi); (0, 2) = blind
    seed: int = 0
    init: str | None = "auto"  # start from these weights (registry name, file or distill folder) instead of random;
    # "auto": the registry's colour default for a small colour model from a real-mode fit, else random
    noise_passes: int = 2  # synthesize's passes: 1 reads the noise model at the clean x (the paper), 2 at a noisy draw
    # x + L(x)·n₀, the kind of input it learned from
    noise_model: str = "auto"  # "correlated" (the fit's spatially correlated model), "cnnest" (the paper's per-pixel
    # one), "pipeline" (the camera pipeline calibrated from the photos: sensor noise through demosaicking, colour,
    # tone, noise reduction and JPEG; real-mode colour fits), or "auto": correlated where the fit run has one
    keep: str = "best"  # "best": the weights the self-score rates highest, stopping once it stops improving; "last":
    # the whole budget and its final weights, unscored (for a noise model the score cannot be taken under, e.g. one
    # pooled over many cameras, whose level misses any one photo's)

    def __post_init__(self) -> None:
        if self.lr is None:
            self.lr = DEFAULT_LR.get(self.arch, DEFAULT_LR["small"])
        if self.noise_model not in NOISE_MODELS:
            raise ConfigError(f"noise model {self.noise_model!r}: expected one of {', '.join(NOISE_MODELS)}")
        if self.keep not in ("best", "last"):
            raise ConfigError(f"keep must be best or last, not {self.keep!r}")
        if not self.lr > 0 or (self.lam or 0) < 0 or not 0 <= (self.noisy_fraction or 0) <= 1:
            raise ConfigError(f"the learning rate must be positive, the stage-1 weight ≥ 0 and the photos' share of a "
                              f"batch within 0–1 (lr {self.lr:g}, weight {self.lam}, share {self.noisy_fraction})")

    def resolve(self, mode: str, channels: int) -> None:
        """Fill the settings left to the fit's mode (see REAL_MODE); what is resolved is what config.json records."""
        real = mode == "real"
        if self.noisy_fraction is None:
            self.noisy_fraction = REAL_MODE["noisy_fraction"] if real else PAPER["noisy_fraction"]
        if self.lam is None:
            self.lam = REAL_MODE["lam"] if real else PAPER["lam"]
        if self.init == "auto":
            from ..registry.weights import load_registry

            self.init = load_registry().default if real and self.arch == "small" and channels == 3 else None
        elif self.init == "none":
            self.init = None
        if not isinstance(self.clean_dir, str):
            dirs = [str(d) for d in self.clean_dir]
            self.clean_dir = dirs[0] if len(dirs) == 1 else dirs

    @property
    def clean_dirs(self) -> list[str]:
        """The clean folders as a list (none, one or more)."""
        return [self.clean_dir] if isinstance(self.clean_dir, str) else list(self.clean_dir)


def parse_noise_scale(text: str) -> tuple[float, float]:
    """``"LO:HI"`` → (LO, HI), the range of the per-patch noise scale d; ValueError unless 0 ≤ LO ≤ HI."""
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        lo = hi = -1.0
    if not 0 <= lo <= hi:
        raise ConfigError(f"noise scale {text!r}: expected LO:HI with 0 ≤ LO ≤ HI, e.g. 0.9:1.1")
    return lo, hi


def saved_distill_config(run: Run, **paths: str | Path | list[Path] | None) -> DistillConfig:
    """The DistillConfig a run was started with, which a resume reuses. ``fit_run``/``clean_dir`` given
    here replace the saved locations (data can move); the training settings stay the run's own."""
    saved = {k: v for k, v in run.read_config().items() if k in DistillConfig.__dataclass_fields__}
    saved["noise_scale"] = tuple(saved["noise_scale"])
    saved.update({k: v if isinstance(v, list) else str(v) for k, v in paths.items() if v is not None})
    return DistillConfig(**saved)


def _draw_noise(stage: Stage1, at: torch.Tensor) -> torch.Tensor:
    """One draw L(at)·n₀ of the learned noise, read at the images ``at`` (N,C,H,W); real mode through the
    pixel-shuffle layout."""
    real = stage.cfg.mode == "real"
    xs = pd_down(at) if real else at
    groups = bayer_groups(at.shape[0]).to(at.device) if real else torch.zeros(at.shape[0], dtype=torch.long, device=at.device)
    L = stage.noise(xs, groups)  # (N',H',W',C,C)
    n0 = torch.randn(*L.shape[:-1], 1, device=at.device, dtype=at.dtype)
    noise = (L @ n0).squeeze(-1).permute(0, 3, 1, 2)
    return pd_up(noise) if real else noise


@torch.no_grad()
def synthesize(stage: Stage1, x: torch.Tensor, scale: torch.Tensor | None = None, passes: int = 1) -> torch.Tensor:
    """ỹ = x + L(x)·n₀ for clean patches x (N,C,H,W), clipped and rounded to 8 bits.

    ``passes`` > 1 reads L again at the previous pass's noisy image x + L·n₀ (a fixed-point iteration): CNNest
    learned Σn from noisy photos, and a long fit can learn cues (e.g. a pixel's distance from gray) that only noisy
    inputs carry, so that L at the clean x reads low. ``scale`` (d per patch) scales the last draw only."""
    noise = _draw_noise(stage, x)
    for _ in range(passes - 1):
        noise = _draw_noise(stage, (x + noise).clamp(0, 1))
    if scale is not None:
        noise = noise * scale.view(-1, 1, 1, 1)
    return torch.round((x + noise).clamp(0, 1) * 255) / 255


NoiseSource = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


def _noise_kind(cfg: DistillConfig, correlated_model: CorrelatedNoise | None) -> str:
    return cfg.noise_model if cfg.noise_model != "auto" else ("correlated" if correlated_model else "cnnest")


def _correlated(cfg: DistillConfig, stage: Stage1, correlated_model: CorrelatedNoise | None) -> CorrelatedNoise | None:
    """The fit's correlated noise model when this distill draws from it (see DistillConfig.noise_model), else None."""
    if _noise_kind(cfg, correlated_model) != "correlated":
        return None
    if correlated_model is None:
        raise ConfigError(f"the fit run {cfg.fit_run} has no correlated noise model (fits in real mode make one)")
    return correlated_model.to(stage.device)


def _pipeline(cfg: DistillConfig, correlated_model: CorrelatedNoise | None,
              pipeline: CameraPipeline | None) -> CameraPipeline | None:
    """The fit's calibrated camera pipeline when this distill draws from it, else None."""
    if _noise_kind(cfg, correlated_model) != "pipeline":
        return None
    if pipeline is None:
        raise ConfigError(f"the fit run {cfg.fit_run} has no calibrated camera pipeline (real-mode colour fits make "
                          "one)")
    return pipeline


def _camera_photos(p: CameraPipeline, x: torch.Tensor, scale: torch.Tensor | None,
                   rng: np.random.Generator) -> torch.Tensor:
    """The camera's photos of clean patches x (N,3,H,W): its noise, σ times d per patch, 8-bit and JPEG."""
    camera = (lambda _: p) if scale is None else (lambda i: p.scaled(float(scale[i]) ** 2))
    return render_batch(x, camera, rng).to(x.device, x.dtype)


def noise_probe(cfg: DistillConfig, stage: Stage1, correlated_model: CorrelatedNoise | None,
                pipeline: CameraPipeline | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """``y → n``: one draw of the learned noise at the images y, from the model distill synthesises with (the
    self-score's probe)."""
    camera = _pipeline(cfg, correlated_model, pipeline)
    if camera is not None:
        rng = np.random.default_rng(cfg.seed)
        return lambda y: _camera_photos(camera, y, None, rng) - y
    model = _correlated(cfg, stage, correlated_model)
    return model.sample if model is not None else lambda y: _draw_noise(stage, y)


def noise_source(cfg: DistillConfig, stage: Stage1, correlated_model: CorrelatedNoise | None,
                 pipeline: CameraPipeline | None = None, rng: np.random.Generator | None = None) -> NoiseSource:
    """``(x, d) → ỹ``: the noisy patches distill trains on, from the fit's calibrated camera pipeline, its correlated
    model or CNNest."""
    camera = _pipeline(cfg, correlated_model, pipeline)
    if camera is not None:
        draws = rng if rng is not None else np.random.default_rng(cfg.seed)
        return lambda x, scale: _camera_photos(camera, x, scale, draws)
    model = _correlated(cfg, stage, correlated_model)
    if model is None:
        return lambda x, scale: synthesize(stage, x, scale, cfg.noise_passes)

    @torch.no_grad()
    def correlated(x: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        noise = model.sample(x)
        if scale is not None:
            noise *= scale.view(-1, 1, 1, 1)
        return torch.round((x + noise).clamp(0, 1) * 255) / 255

    return correlated


def training_data(cfg: DistillConfig, fit: FitRun) -> tuple[list[np.ndarray] | ImagePool, list[np.ndarray]]:
    """The clean images (several folders: a pool drawing from each equally often; gray ones replicated to
    colour) when synthesised pairs are drawn, and the photos paired with their stage-1 results."""
    c = fit.config.channels
    pairs = fit.pairs()
    if cfg.noisy_fraction >= 1 and cfg.lam > 0:
        if not pairs:
            raise ConfigError(f"the fit run {cfg.fit_run} has no stage-1 results to train on (denoised/ is empty)")
        return [], pairs
    if not cfg.clean_dirs:
        raise ConfigError("training on synthesised noise needs a folder of clean images")
    folders = [read_rgb_folder(d, c) for d in cfg.clean_dirs]
    return (folders[0] if len(folders) == 1 else ImagePool.from_folders(folders)), pairs


#: Training precisions: bf16 runs the MWCNN under autocast (faster on GPUs with bf16 tensor cores, see
#: benchmarks/train_speed.py; unlike fp16 it needs no loss scaling); noise synthesis and loss stay fp32.
TRAIN_PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str, device: torch.device) -> None:
    """ValueError unless ``precision`` can train on ``device`` (bf16: CPU, or a CUDA GPU that supports it)."""
    if precision not in TRAIN_PRECISIONS:
        raise ConfigError(f"training precision {precision}: expected one of {', '.join(TRAIN_PRECISIONS)}")
    if precision == "bf16" and not (device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())):
        raise ConfigError(f"bf16 training is not supported on {device}; use fp32")


def make_step_loss(cfg: DistillConfig, stage: Stage1, model: torch.nn.Module, clean: list[np.ndarray] | ImagePool,
                   pairs: list[np.ndarray], rng: np.random.Generator, device: torch.device,
                   precision: str = "fp32", correlated: CorrelatedNoise | None = None,
                   pipeline: CameraPipeline | None = None) -> Callable[[int], torch.Tensor]:
    """One batch's loss: ‖CDN(ỹ) − x‖² on synthesised pairs plus λ‖CDN(y) − x̂y‖² on the photos' share."""
    if cfg.noisy_fraction is None or cfg.lam is None:
        raise ValueError("DistillConfig.resolve() first: the batch's make-up depends on the fit's mode")
    c = stage.cfg.channels
    noisy_of = noise_source(cfg, stage, correlated, pipeline, rng)
    n_noisy = min(cfg.batch, max(1, round(cfg.batch * cfg.noisy_fraction))) if pairs and cfg.lam > 0 else 0
    align = FACTOR if stage.cfg.mode == "real" else 1
    patch = cfg.patch // align * align

    def cdn(y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            return model(y).float()

    ranks = parallel.world()

    def step_loss(_: int) -> torch.Tensor:
        # under torchrun every rank draws the global batch alike and trains on its slice (training.parallel)
        n = cfg.batch - n_noisy
        inputs, targets = [], []
        if n:
            x = parallel.my_share(random_patches(clean, patch, n * ranks, rng)).to(device)
            inputs.append(noisy_of(x, torch.empty(n, device=device).uniform_(*cfg.noise_scale)))
            targets.append(x)
        if n_noisy:
            yx = parallel.my_share(random_patches(pairs, patch, n_noisy * ranks, rng)).to(device)
            inputs.append(yx[:, :c])
            targets.append(yx[:, c:])
        # one forward over both kinds of pair: the same loss, half the kernel launches that bound small nets on a GPU
        out = cdn(torch.cat(inputs))
        synthetic = F.mse_loss(out[:n], targets[0]) if n else 0.0
        return synthetic + (cfg.lam * F.mse_loss(out[n:], targets[-1]) if n_noisy else 0.0)

    return step_loss


def photo_score(model: torch.nn.Module, crops: list[np.ndarray], probe: Callable[[torch.Tensor], torch.Tensor],
                device: torch.device, seed: int) -> Callable[[], float]:
    """The model's reference-free score on held-out crops of the photos: the estimated PSNR (dB) by Monte-Carlo SURE
    with one fixed draw of the learned noise per crop (training.self_score), in fp32."""
    ys = [torch.from_numpy(np.ascontiguousarray(c.transpose(2, 0, 1)))[None].to(device) for c in crops]
    generator = torch.get_rng_state()
    torch.manual_seed(seed)
    with torch.no_grad():
        probes = [probe(y) for y in ys]
    torch.set_rng_state(generator)

    def score() -> float:
        mse = [mc_sure(model, y, n) for y, n in zip(ys, probes)]
        return psnr_of_mse(sum(m * y.numel() for m, y in zip(mse, ys)) / sum(y.numel() for y in ys))

    return score


def init_weights(model: torch.nn.Module, spec: str) -> None:
    """Load the weights named by ``spec`` into ``model`` (a fine-tune's start); ValueError if they do not fit it."""
    start = load_model(resolve(spec))
    if start.config != model.config:
        raise ConfigError(f"initial weights {spec}: a {start.config.channels}-channel MWCNN with widths "
                          f"{list(start.config.widths)}, but this distill trains {model.config.channels} channels with "
                          f"widths {list(model.config.widths)}")
    model.load_state_dict(start.state_dict())


def distill(cfg: DistillConfig, out: Run, budget: Budget, device: torch.device, *, reporter: Reporter = SILENT,
            precision: str = "fp32", fit: FitRun | None = None, on_score=None) -> Path:
    """Train (or resume) the MWCNN; write OUT/model.safetensors and OUT/entry.toml; return the model path.

    ``precision`` is a property of this session, like the device: a resume may change it. A new output folder that
    fails before its first checkpoint is removed again."""
    check_precision(precision, device)
    fit = fit or FitRun(cfg.fit_run)
    with out.removed_on_failure():
        return _distill(cfg, out, budget, device, fit, reporter=reporter, precision=precision,
                        on_score=on_score)


def _distill(cfg: DistillConfig, out: Run, budget: Budget, device: torch.device, fit: FitRun, *, reporter: Reporter,
             precision: str, on_score) -> Path:
    stage = fit.stage1(device)
    cfg.resolve(stage.cfg.mode, stage.cfg.channels)
    clean, pairs = training_data(cfg, fit)
    pairs, held = holdout(pairs, 2 * cfg.patch, align=2 * FACTOR) if pairs else (pairs, [])
    torch.manual_seed(cfg.seed)  # the random start follows --seed
    model = build_mwcnn(stage.cfg.channels, cfg.arch).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if out.exists():
        budget.resume(*out.load({"model": model}, opt))
    elif cfg.init:
        init_weights(model, cfg.init)
    out.write_config({"stage": "distill", **asdict(cfg), "precision": precision})
    rng = np.random.default_rng([cfg.seed, budget.step])
    torch.manual_seed(cfg.seed + budget.step + 1_000_003 * parallel.rank())  # each rank's own synthesised noise
    correlated, pipeline = fit.correlated_noise(), fit.camera_pipeline()
    step_loss = make_step_loss(cfg, stage, parallel.wrap(model), clean, pairs, rng, device, precision, correlated,
                               pipeline)
    score = photo_score(model, [h[..., : stage.cfg.channels] for h in held],
                        noise_probe(cfg, stage, correlated, pipeline),
                        device, cfg.seed) if held and cfg.keep == "best" else None

    start = time.perf_counter()
    train_loop(out, {"model": model}, opt, step_loss, budget, cfg.lr, reporter=reporter,
               description="distill", start_lr=cfg.lr * 0.01 if cfg.init else None, score=score,
               scores=ScoreLog(out.records(), counts_from=SCORE_FROM), on_score=on_score,
               score_start=bool(cfg.init))  # a fine-tune ends on its start if training only scored lower
    path = out.path / "model.safetensors"
    if parallel.is_main():  # under torchrun rank 0 writes the model
        save_model(model.eval().cpu(), path, trained_by="denoise-cli distill (unpaired)", fit_run=str(cfg.fit_run),
                   noise_mode=stage.cfg.mode)
        params = sum(p.numel() for p in model.parameters())
        _write_entry(out, path, cfg, fit, params, budget, time.perf_counter() - start, device, precision)
    parallel.barrier()
    return path


def _write_entry(out: Run, path: Path, cfg: DistillConfig, fit: FitRun, params: int, budget: Budget,
                 seconds: float, device: torch.device, precision: str = "fp32") -> None:
    """A weights.toml-style entry beside the model: architecture, sha256 and provenance (the command
    spells out every training setting, lr and seed included, so it reproduces the run)."""
    hw = f"{platform.processor() or platform.machine()} ({device}"
    hw += f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    hw += f", {precision})"
    name = out.path.parent.name if out.path.name == "model" else out.path.name
    noisy_dir = fit.noisy_dir
    clean = " ".join(cfg.clean_dirs)
    command = (f"denoise-cli distill --fit {cfg.fit_run} {clean} --out {out.path} --arch {cfg.arch} "
               f"--patch {cfg.patch} --batch {cfg.batch} --lr {cfg.lr:g} "
               f"--noise-scale {cfg.noise_scale[0]:g}:{cfg.noise_scale[1]:g} --stage1-weight {cfg.lam:g} --seed {cfg.seed}"
               + f" --pairs-share {cfg.noisy_fraction:g} --init {cfg.init or 'none'}"
               + f" --noise-passes {cfg.noise_passes} --noise-model {cfg.noise_model} --keep {cfg.keep}"
               + (" --precision bf16" if precision == "bf16" else ""))
    entry = {
        "description": f"MWCNN(unpaired) distilled from fit run {cfg.fit_run} " + (
            f"with clean images from {clean}" if clean else "on the photos' own stage-1 results (no clean images)"),
        "architecture": {"arch": "mwcnn", "name": cfg.arch, "params": params},
        "channels": fit.config.channels,
        "noise": f"learned ({fit.config.mode} mode)",
        **file_fields(path),
        "source": {"local": str(path)},
        "training": {
            "kind": "unpaired: fit (stage 1) + distill (stage 2)",
            "command": command,
            "data": f"noisy: {noisy_dir}; " + (f"clean: {clean}" if clean else "no clean images"),
            "hardware": hw,
            "time": f"{budget.elapsed / 60:.1f} min training ({budget.step} steps); the last session took "
                    f"{seconds / 60:.1f} min",
        },
    }
    write_entry(out.path / "entry.toml", name, entry,
                comments={"metrics": f"fill in with `denoise-cli eval --weights {out.path} ...`"})
