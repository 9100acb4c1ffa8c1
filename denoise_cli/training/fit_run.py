"""The hand-off from `fit` to `distill`: a finished fit run, loaded once — its settings, stage 1, its noise models and
each photo paired with its stage-1 result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..io import list_images, read_named, to_channels
from ..noise.correlated import CorrelatedNoise, load_noise
from ..noise.calibrate import load_pipeline
from ..noise.pipeline import CameraPipeline
from .fit_config import CORRELATED_FILE, PIPELINE_FILE, REPORT_FILE, FitConfig, saved_config
from .stage1 import Stage1
from ..noise.levels import NoiseLevels
from .runs import Run

DENOISED = "denoised"  # the folder of stage-1 results in a fit run


class FitRun:
    """A finished fit run. ``pairs`` and ``stage`` may be handed over by the fit that just made them (as `adapt`
    does), so the photos are read once; otherwise they are read from the run folder on first use."""

    def __init__(self, path: str | Path, *, pairs: list[np.ndarray] | None = None, stage: Stage1 | None = None) -> None:
        self.run = Run(path)
        if not self.run.exists() or not self.run.finished() or not (self.run.path / DENOISED).is_dir():
            raise ConfigError(f"{path} is not a finished fit run (no checkpoint at the end of its budget, or no "
                              f"{DENOISED}/ folder)")
        self.config: FitConfig = saved_config(self.run)
        self.noisy_dir = Path(self.run.read_config()["noisy_dir"])
        self._pairs, self._stage = pairs, stage

    @property
    def path(self) -> Path:
        return self.run.path

    def stage1(self, device: torch.device) -> Stage1:
        """Stage 1 with its trained weights, frozen (distill only samples its noise model)."""
        if self._stage is None or self._stage.device != device:
            stage = Stage1(self.config, device)
            self.run.load(stage.modules, None)
            if self.run.best.exists():  # the weights fit kept for their reference-free score
                self.run.load_best(stage.modules)
            report = self.report if (self.path / REPORT_FILE).exists() else {}
            stage.fusion = report.get("fusion", {}).get("chosen", "bayes")  # as the run's photos were denoised
            if "noise_levels" in report:
                stage.levels = NoiseLevels.from_dict(report["noise_levels"])
            self._stage = stage
        for m in self._stage.modules.values():
            m.eval().requires_grad_(False)
        return self._stage

    @property
    def cameras(self) -> dict[str, list[float]]:
        """The cameras the fit's photos named in their EXIF, each with its ISOs (empty when none did)."""
        return self.run.read_config().get("cameras", {})

    @property
    def report(self) -> dict:
        """The noise report (noise_report.json): the learned σ against intensity, and the correlated model's
        structure in real mode."""
        return json.loads((self.path / REPORT_FILE).read_text())

    def correlated_noise(self) -> CorrelatedNoise | None:
        """The spatially correlated noise model (real-mode fits), or None."""
        path = self.path / CORRELATED_FILE
        return load_noise(path) if path.exists() else None

    def camera_pipeline(self) -> CameraPipeline | None:
        """The camera pipeline calibrated from the photos (real-mode colour fits), or None."""
        path = self.path / PIPELINE_FILE
        return load_pipeline(path) if path.exists() else None

    def pairs(self) -> list[np.ndarray]:
        """Each noisy photo with its stage-1 result stacked on the channels (H×W×2C), so one crop cuts both."""
        if self._pairs is None:
            c = self.config.channels
            self._pairs = []
            for f in list_images(self.noisy_dir):
                target = self.path / DENOISED / f"{f.stem}.png"
                if target.exists():
                    self._pairs.append(np.concatenate([to_channels(read_named(f).pixels, c),
                                                       to_channels(read_named(target).pixels, c)], 2))
        return self._pairs
