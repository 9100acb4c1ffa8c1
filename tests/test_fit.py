"""Stage 1 end to end on tiny images: the run folder has everything the issue lists."""

import json

import numpy as np
import torch

from conftest import run_cli
from denoise_cli.io import Photo, read_image, write_image
from denoise_cli.noise import add_noise, quantize
from denoise_cli.runs import Run
from denoise_cli.stages.fit import load_stage1


def _noisy_folder(tmp_path, channels):
    d = tmp_path / f"noisy{channels}"
    y, x = np.mgrid[0:64, 0:64] / 64.0
    for i in range(2):
        clean = np.stack([x, y, (x + y) / 2][:channels], axis=2)
        write_image(Photo(quantize(add_noise(clean, "awgn:25", np.random.default_rng(i)))), d / f"n{i}.png")
    return d


def test_fit_gray_synthetic_and_resume(tmp_path):
    d = _noisy_folder(tmp_path, 1)
    run = tmp_path / "run"
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "4", "--patch", "24", "--batch", "2")
    assert r.returncode == 0, r.stderr
    for f in ("config.json", "checkpoint.safetensors", "metrics.jsonl", "noise_model.safetensors",
              "noise_report.json", "noise_report.png", "denoised/n0.png", "denoised/n1.png"):
        assert (run / f).exists(), f
    assert json.loads((run / "config.json").read_text())["mode"] == "synthetic"
    assert read_image(run / "denoised" / "n0.png").pixels.shape == (64, 64, 1)
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "4")
    assert r.returncode == 2 and b"--resume" in r.stderr
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "6", "--resume")
    assert r.returncode == 0, r.stderr
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] or [6]
    assert max(steps) <= 6


def test_fit_color_real_mode(tmp_path):
    d = _noisy_folder(tmp_path, 3)
    run = tmp_path / "run"
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "2", "--patch", "8", "--batch", "16")
    assert r.returncode == 0, r.stderr
    report = json.loads((run / "noise_report.json").read_text())
    assert set(report["sigma"]) == {"group0", "group1", "group2", "group3"}
    assert read_image(run / "denoised" / "n1.png").pixels.shape == (64, 64, 3)


def test_fit_with_a_diagonal_noise_covariance_keeps_channels_independent(tmp_path):
    d = _noisy_folder(tmp_path, 3)
    run = tmp_path / "run"
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "2", "--patch", "16", "--batch", "2",
                "--mode", "synthetic", "--noise-cov", "diagonal")
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "config.json").read_text())["noise_cov"] == "diagonal"
    stage = load_stage1(Run(run))  # the saved run rebuilds with the same shape (distill does this)
    L = stage.noise(torch.rand(1, 3, 4, 4), 0)
    assert (L[..., 1, 0] == 0).all() and (L[..., 2, :2] == 0).all()
    assert run_cli("fit", str(d), "--run", str(tmp_path / "x"), "--iterations", "1",
                   "--noise-cov", "banded").returncode == 2


def test_fit_needs_a_budget_and_images(tmp_path):
    assert run_cli("fit", str(tmp_path), "--run", str(tmp_path / "r")).returncode == 2
    r = run_cli("fit", str(tmp_path), "--run", str(tmp_path / "r"), "--iterations", "1")
    assert r.returncode == 2 and b"no images" in r.stderr


def test_distill_after_fit_gives_weights_denoise_can_use(tmp_path):
    d = _noisy_folder(tmp_path, 3)
    clean = tmp_path / "clean"
    y, x = np.mgrid[0:80, 0:80] / 80.0
    write_image(Photo(np.stack([y, x, 1 - x], 2).astype(np.float32)), clean / "c.png")
    run = tmp_path / "run"
    assert run_cli("fit", str(d), "--run", str(run), "--iterations", "2", "--patch", "8", "--batch", "16").returncode == 0
    r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "3", "--patch", "32", "--batch", "4")
    assert r.returncode == 0, r.stderr
    assert (run / "model" / "model.safetensors").exists() and "sha256" in (run / "model" / "entry.toml").read_text()
    r = run_cli("denoise", str(d / "n0.png"), "-o", str(tmp_path / "out"), "--weights", str(run / "model"))
    assert r.returncode == 0, r.stderr
    r = run_cli("distill", str(clean), "--fit", str(tmp_path), "--iterations", "1")
    assert r.returncode == 2 and b"not a finished fit run" in r.stderr
    r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "1", "--noise-scale", "2:1",
                "--out", str(tmp_path / "other"))
    assert r.returncode == 2 and b"--noise-scale" in r.stderr and not (tmp_path / "other").exists()
    r = run_cli("weights", "export", str(run / "model"), str(tmp_path / "hub"))
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (tmp_path / "hub").iterdir()} == {"model.safetensors", "config.json", "entry.toml", "README.md"}
    assert "sha256" in (tmp_path / "hub" / "README.md").read_text()


def test_synthesized_noise_follows_the_noise_model():
    import torch

    from denoise_cli.stages.distill import synthesize
    from denoise_cli.stages.fit import FitConfig, Stage1

    torch.manual_seed(0)
    for mode in ("synthetic", "real"):
        stage = Stage1(FitConfig(mode=mode, channels=3), torch.device("cpu"))
        x = torch.full((2, 3, 64, 64), 0.5)
        expected = stage.noise.sigma_curve(torch.tensor([0.5]), 0)[0]  # σ on 0–255 per channel
        got = (synthesize(stage, x) - x).std(dim=(0, 2, 3)) * 255
        assert torch.allclose(got, expected, rtol=0.15, atol=0.5), (mode, got, expected)
        scaled = (synthesize(stage, x, torch.full((2,), 2.0)) - x).std(dim=(0, 2, 3)) * 255
        assert torch.allclose(scaled, 2 * expected, rtol=0.15, atol=1.0)  # --noise-scale: blind ranges
        assert torch.equal(synthesize(stage, x, torch.zeros(2)), torch.round(x * 255) / 255)


def test_adapt_runs_fit_then_distill(tmp_path):
    d = _noisy_folder(tmp_path, 1)
    clean = tmp_path / "clean"
    write_image(Photo(np.random.default_rng(5).random((72, 72, 1)).astype(np.float32)), clean / "c.png")
    r = run_cli("adapt", str(d), str(clean), "--run", str(tmp_path / "cam"), "--time-budget", "4s")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cam" / "noise_model.safetensors").exists()
    assert (tmp_path / "cam" / "model" / "model.safetensors").exists()
