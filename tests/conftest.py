"""Shared fixtures: tiny images and a tiny checkpoint made in the test, never big data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from denoise_cli.registry.checkpoint import save_model
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


def run_cli(*args: str, env: dict | None = None, stdin: bytes | None = None, cwd: Path | None = None,
            preexec_fn=None, fresh: bool = False) -> subprocess.CompletedProcess:
    """Run `denoise-cli ARGS` as a user would and return what a process would: exit code, stdout and stderr bytes.

    In this process by default (Typer's runner: no PyTorch import per call, which made the suite minutes slower);
    ``fresh=True`` (or a ``preexec_fn``) runs `python -m denoise_cli` in a new process, for what only a real process
    shows: signals, file-size limits, real stdio pipes, environment read at import time (the Hub's endpoint)."""
    if fresh or preexec_fn is not None:
        full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
        return subprocess.run([sys.executable, "-m", "denoise_cli", *args], capture_output=True, input=stdin,
                              env=full_env, cwd=cwd, timeout=300, preexec_fn=preexec_fn)
    return _in_process(list(args), {"COLUMNS": "200", **(env or {})}, stdin, cwd)


def _in_process(args: list[str], env: dict, stdin: bytes | None, cwd: Path | None) -> subprocess.CompletedProcess:
    import traceback

    from typer.testing import CliRunner

    from denoise_cli.cli import app

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(env)
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner().invoke(app, args, input=stdin, catch_exceptions=True)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    stderr = result.stderr_bytes or b""
    if result.exception is not None and not isinstance(result.exception, SystemExit):  # what a process would print
        stderr += "".join(traceback.format_exception(result.exception)).encode()
    return subprocess.CompletedProcess(["denoise-cli", *args], result.exit_code, result.stdout_bytes, stderr)


def make_dng(path: Path, h: int = 64, w: int = 96) -> Path:
    """A minimal valid DNG (RGGB mosaic, 16-bit) that LibRaw/rawpy can demosaic."""
    from denoise_cli.io.dng import write_dng

    rng = np.random.default_rng(0)
    cfa = np.zeros((h, w), np.uint16)
    cfa[0::2, 0::2], cfa[0::2, 1::2], cfa[1::2, 0::2], cfa[1::2, 1::2] = 30000, 20000, 20000, 10000
    return write_dng(path, (cfa + rng.integers(0, 2000, (h, w))).astype(np.uint16))


def noisy_folder(tmp_path: Path, channels: int) -> Path:
    """Two 64×64 gradient images with AWGN σ25, 8-bit: the smallest folder `fit` can learn from."""
    from denoise_cli.io import Photo, write_image
    from denoise_cli.noise.synthetic import add_noise, quantize

    d = tmp_path / f"noisy{channels}"
    y, x = np.mgrid[0:64, 0:64] / 64.0
    for i in range(2):
        clean = np.stack([x, y, (x + y) / 2][:channels], axis=2)
        write_image(Photo(quantize(add_noise(clean, "awgn:25", np.random.default_rng(i)))), d / f"n{i}.png")
    return d


@pytest.fixture(scope="session")
def _gray_fit_once(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("gray-fit")
    run = base / "run"
    r = run_cli("fit", str(noisy_folder(base, 1)), "--run", str(run), "--iterations", "2", "--patch", "16",
                "--batch", "2")
    assert r.returncode == 0, r.stderr
    return run


@pytest.fixture
def gray_fit(_gray_fit_once: Path, tmp_path: Path) -> Path:
    """A finished two-step gray fit run (trained once per test session), copied so that a test may distill into it."""
    run = tmp_path / "run"
    shutil.copytree(_gray_fit_once, run)
    return run


def toy_training(path: Path):
    """A linear model, its Adam, a fresh run folder and a fixed regression batch: the smallest thing train_loop runs."""
    import torch

    from denoise_cli.training.runs import Run

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    run = Run(path / "run")
    run.write_config({"x": 1})
    return run, model, opt, torch.randn(64, 3), torch.randn(64, 1)
