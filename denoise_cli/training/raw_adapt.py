"""`fit`, `distill` and `adapt` on camera RAW files: the sensor's noise measured from the user's noisy RAW files, then
the RAW model fine-tuned on clean photos taken back to sensor data with exactly that noise.

On Bayer data the paper's assumptions hold exactly: the noise is pixel-independent with variance a·x + b. So the RAW
fit does not need a network to learn the noise's form — it measures (a, b) per camera and ISO from the noisy planes
(noise.sensor.estimate_sensor_noise, pooled over the files of each ISO). The RAW distill starts from the RAW default
and trains on unprocessed clean photos with the measured noise (guided, and blind for a share of patches); the model
keeps its camera/ISO noise table, so `denoise` gives each file the noise of its ISO.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, ImageError
from ..inference.raw import camera_key
from ..io import RAW_SUFFIXES, list_images, write_bytes_atomic
from ..io.bayer import open_raw, read_planes
from ..io.camera import camera_from_raw
from ..models.mwcnn import build_mwcnn
from ..noise.sensor import SensorNoise, fit_sensor_noise, noise_samples, to_canonical
from ..progress import SILENT, Reporter
from ..registry.checkpoint import load_model, save_model
from .loop import train_loop
from .patches import random_patches
from .pipeline_default import clean_pool
from .raw_default import GUIDES, raw_loss, sensor_batch
from .runs import Budget, Run

NOISE_FILE = "sensor_noise.json"


def raw_folder(folder: str | Path) -> bool:
    """Whether a folder's images are camera RAW files (all of them, and at least one)."""
    files = list_images(folder) if Path(folder).is_dir() else []
    return bool(files) and all(f.suffix.lower() in RAW_SUFFIXES for f in files)


@dataclass
class SensorGroup:
    """The files of one camera at one ISO and the sensor noise measured on them."""

    camera: str
    iso: float
    files: int
    noise: SensorNoise

    def to_dict(self) -> dict:
        return {"camera": self.camera, "iso": self.iso, "files": self.files, **self.noise.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "SensorGroup":
        return cls(str(d["camera"]), float(d["iso"]), int(d["files"]), SensorNoise.from_dict(d))


def fit_raw(noisy_dir: str | Path, run: str | Path, reporter: Reporter = SILENT) -> list[SensorGroup]:
    """Measure the sensor noise of a folder of RAW files per camera and ISO; written to RUN/sensor_noise.json. Each
    file is read once and only a sample of its pixels kept (noise.sensor.noise_samples), so memory stays small.
    Files that cannot be read, or whose sensor is not a Bayer one, are skipped (ImageError if none is left)."""
    files = list_images(noisy_dir)
    groups: dict[tuple[str, float], list[np.ndarray]] = {}  # per camera and ISO: each file's noise samples
    reporter.start("fit", len(files), "measuring the sensor noise")
    skipped = []
    for i, f in enumerate(files):
        data = Path(f).read_bytes()
        try:
            with open_raw(data) as raw:
                frame = read_planes(raw)
        except ImageError as e:
            skipped.append(f"{f.name}: {e}")
        else:
            samples = noise_samples(to_canonical(frame.planes, frame.cfa), seed=i)
            groups.setdefault(camera_key(camera_from_raw(data)), []).append(samples)
        reporter.update("fit", completed=i + 1)
    reporter.done("fit")
    if not groups:
        raise ImageError("no Bayer RAW file could be read in " + str(noisy_dir) + (f" ({skipped[0]})" if skipped else ""))
    found = [SensorGroup(cam, iso, len(samples), fit_sensor_noise(samples)) for (cam, iso), samples in groups.items()]
    Path(run).mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(Path(run) / NOISE_FILE, json.dumps({"groups": [g.to_dict() for g in found],
                                                           "skipped": skipped}, indent=2).encode())
    return found


def fitted_groups(run: str | Path) -> list[SensorGroup] | None:
    """The sensor noise a RAW fit measured, or None when ``run`` is not a RAW fit."""
    path = Path(run) / NOISE_FILE
    if not path.exists():
        return None
    try:
        return [SensorGroup.from_dict(g) for g in json.loads(path.read_text())["groups"]]
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path} is malformed ({e})") from None


def learned_noise(model_file: str | Path) -> dict[tuple[str, float], SensorNoise]:
    """The camera/ISO noise table a RAW distill stored in its model file (empty for the RAW default)."""
    from ..errors import CheckpointError
    from ..registry.checkpoint import read_metadata

    try:
        groups = [SensorGroup.from_dict(g) for g in json.loads(read_metadata(model_file).get("sensor_noise", "[]"))]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{model_file}: malformed sensor noise table ({e})") from None
    return {(g.camera, g.iso): g.noise for g in groups}


def finished(run: str | Path, seconds: float) -> bool:
    """Whether a RAW adapt run has its model and trained it for ``seconds`` (a larger budget continues it)."""
    model = Run(Path(run) / "model")
    return (model.path / "model.safetensors").exists() and model.exists() \
        and float(model.metadata().get("elapsed", 0)) >= 0.99 * seconds


def distill_raw(fit_run: str | Path, clean_dirs: list, out: str | Path, budget: Budget, device: torch.device, *,
                init: str | None = None, patch: int = 128, batch: int = 16, lr: float = 2e-4, seed: int = 0,
                reporter: Reporter = SILENT) -> Path:
    """Fine-tune the RAW default (or ``init``: weights, or "none" for a fresh network) on clean photos with the noise
    the RAW fit measured; a run in ``out`` continues. Returns OUT/model.safetensors, which carries the camera/ISO noise
    table."""
    from ..registry.weights import load_registry, resolve

    groups = fitted_groups(fit_run)
    if groups is None:
        raise ConfigError(f"{fit_run} is not a RAW fit (no {NOISE_FILE})")
    if not clean_dirs:
        raise ConfigError("a RAW distill trains on clean photos: give CLEAN_DIR (any folder of clean images)")
    pool = clean_pool([str(d) for d in clean_dirs])
    if init == "none":
        model = build_mwcnn(4, "small", guides=GUIDES)
    else:
        model = load_model(resolve(init or load_registry().default_raw))
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    run = Run(out)
    if run.exists():
        budget.resume(*run.load({"model": model}, opt))
    run.write_config({"fit_run": str(fit_run), "clean_dir": [str(d) for d in clean_dirs], "init": init, "patch": patch,
                      "batch": batch, "lr": lr, "seed": seed, "kind": "raw"})
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, budget.step])
    fixed = [g.noise for g in groups]

    def step_loss(_: int) -> torch.Tensor:
        inputs, clean = sensor_batch(random_patches(pool, patch, batch, rng, align=2), rng, fixed=fixed)
        return raw_loss(model, inputs.to(device), clean.to(device))

    train_loop(run, {"model": model}, opt, step_loss, budget, lr, reporter=reporter, description="RAW distill")
    path = Path(out) / "model.safetensors"
    save_model(model.eval(), path, half=True, trained_by="denoise-cli distill (RAW)",
               sensor_noise=json.dumps([g.to_dict() for g in groups]))
    return path
