"""What an adapted model knows about its camera: read back from the distill run and the fit behind it, so that it
can be stored as a camera profile (registry.profiles)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..inference.raw import UNKNOWN_CAMERA
from ..noise.report import mid_gray
from ..registry.entry import read_entry
from .fit_run import FitRun
from .runs import Run


@dataclass
class AdaptedModel:
    """A distilled model file and, when its fit run is at hand, the camera, ISOs and noise level it learned."""

    model: Path
    camera: str | None = None
    isos: list[float] = field(default_factory=list)
    sigma_mid: list[float] = field(default_factory=list)
    made_by: str = ""
    cameras_seen: int = 0  # cameras the fit's photos named (more than one: the most frequent is taken)


def adapted_model(path: Path) -> AdaptedModel:
    """Read a distill run folder (or a bare model file: then nothing is known beyond the file)."""
    model = path / "model.safetensors" if path.is_dir() else path
    if not model.exists():
        raise ConfigError(f"{path} holds no model.safetensors (give a distill or adapt run's model folder)")
    out = AdaptedModel(model)
    run = Run(model.parent)
    if not (model.parent / "config.json").exists():
        return out
    cfg = run.read_config()
    if cfg.get("kind") == "raw" and cfg.get("fit_run"):
        return _adapted_raw(out, cfg["fit_run"])
    if cfg.get("stage") != "distill" or not cfg.get("fit_run"):
        return out
    entry = model.parent / "entry.toml"
    if entry.exists():
        out.made_by = read_entry(entry)[1].get("training", {}).get("command", "")
    try:
        fit = FitRun(cfg["fit_run"])
    except ConfigError:
        return out  # the fit run has moved: the camera must be given by hand
    cameras = fit.cameras
    out.cameras_seen = len(cameras)
    if cameras:
        counts = Counter({name: max(1, len(isos)) for name, isos in cameras.items()})
        out.camera = counts.most_common(1)[0][0]
        out.isos = list(cameras[out.camera])
    by_group = mid_gray(fit.report)
    channels = list(zip(*by_group.values()))
    out.sigma_mid = [sum(c) / len(c) for c in channels]
    return out


def _adapted_raw(out: AdaptedModel, fit_run: str) -> AdaptedModel:
    """A RAW distill's camera, ISOs and noise at mid-grey (σ on 0–255 of the white level), from its RAW fit."""
    from .raw_adapt import fitted_groups

    groups = [g for g in (fitted_groups(fit_run) or []) if g.camera != UNKNOWN_CAMERA]
    out.cameras_seen = len({g.camera for g in groups})
    if groups:
        out.camera = Counter(g.camera for g in groups for _ in range(g.files)).most_common(1)[0][0]
        mine = [g for g in groups if g.camera == out.camera]
        out.isos = sorted({g.iso for g in mine if g.iso > 0})
        out.sigma_mid = [255 * (sum(g.noise.a[0] for g in mine) / len(mine) * 0.18
                                + sum(g.noise.b[0] for g in mine) / len(mine)) ** 0.5]
    out.made_by = "denoise-cli distill (RAW)"
    return out
