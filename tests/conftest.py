"""Shared fixtures: tiny images and a tiny checkpoint made in the test, never big data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from denoise_cli.checkpoint import save_model
from denoise_cli.models.mwcnn import MWCNN, MWCNNConfig

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def tiny_model(channels: int = 3, seed: int = 0) -> MWCNN:
    torch.manual_seed(seed)
    return MWCNN(MWCNNConfig(channels=channels, widths=(4, 8, 8), convs=1)).eval()


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.safetensors"
    save_model(tiny_model(), path)
    return path


@pytest.fixture
def smooth_rgb() -> np.ndarray:
    """A 48×64 smooth colour image in [0,1] (gradients), float32."""
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    return np.stack([x / 63, y / 47, (x + y) / 110], axis=2).astype(np.float32)


def run_cli(*args: str, env: dict | None = None, stdin: bytes | None = None, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
    """Run `python -m denoise_cli ARGS` as a user would (fresh process, so env vars apply)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "denoise_cli", *args], capture_output=True, input=stdin,
                          env=full_env, cwd=cwd, timeout=300)
