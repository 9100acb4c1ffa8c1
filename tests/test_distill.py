"""Stage 2 on tiny runs: distill's outputs, its synthesised noise, its options, and adapt."""

import json

import numpy as np
import torch
from safetensors.torch import load_file

from conftest import noisy_folder, run_cli
from denoise_cli.io import Photo, write_image
from denoise_cli.stages.distill import synthesize
from denoise_cli.stages.fit import FitConfig, Stage1


def _clean_folder(tmp_path):
    clean = tmp_path / "clean"
    y, x = np.mgrid[0:80, 0:80] / 80.0
    write_image(Photo(np.stack([y, x, 1 - x], 2).astype(np.float32)), clean / "c.png")
    return clean


def test_distill_after_fit_gives_weights_denoise_can_use(tmp_path):
    d = noisy_folder(tmp_path, 3)
    clean = _clean_folder(tmp_path)
    run = tmp_path / "run"
    assert run_cli("fit", str(d), "--run", str(run), "--iterations", "2", "--patch", "8", "--batch", "16").returncode == 0
    r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "3", "--patch", "32", "--batch", "4")
    assert r.returncode == 0, r.stderr
    assert (run / "model" / "model.safetensors").exists() and "sha256" in (run / "model" / "entry.toml").read_text()
    r = run_cli("denoise", str(d / "n0.png"), "-o", str(tmp_path / "out"), "--weights", str(run / "model"))
    assert r.returncode == 0, r.stderr
    r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "4", "--resume", "--batch", "8",
                "--noise-scale", "0:2")
    assert r.returncode == 0, r.stderr
    saved = json.loads((run / "model" / "config.json").read_text())  # a resume keeps the run's own settings
    assert saved["batch"] == 4 and saved["noise_scale"] == [0.9, 1.1] and b"saved settings" in r.stderr
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


def test_stage1_weight_sets_lambda_and_is_recorded(tmp_path):
    d = noisy_folder(tmp_path, 1)
    clean = _clean_folder(tmp_path)
    run = tmp_path / "run"
    assert run_cli("fit", str(d), "--run", str(run), "--iterations", "2", "--patch", "16", "--batch", "2").returncode == 0
    r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "2", "--patch", "32", "--batch", "4",
                "--stage1-weight", "0")
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "model" / "config.json").read_text())["lam"] == 0
    assert "--stage1-weight 0" in (run / "model" / "entry.toml").read_text()
    r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "1", "--stage1-weight", "-1",
                "--out", str(tmp_path / "other"))
    assert r.returncode == 2 and b"--stage1-weight" in r.stderr and not (tmp_path / "other").exists()


def test_adapt_runs_fit_then_distill(tmp_path):
    d = noisy_folder(tmp_path, 1)
    clean = tmp_path / "clean"
    write_image(Photo(np.random.default_rng(5).random((72, 72, 1)).astype(np.float32)), clean / "c.png")
    r = run_cli("adapt", str(d), str(clean), "--run", str(tmp_path / "cam"), "--time-budget", "4s")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cam" / "noise_model.safetensors").exists()
    assert (tmp_path / "cam" / "model" / "model.safetensors").exists()


def test_init_starts_from_given_weights_and_rejects_a_mismatch(tmp_path):
    d = noisy_folder(tmp_path, 1)
    clean = _clean_folder(tmp_path)
    run = tmp_path / "run"
    assert run_cli("fit", str(d), "--run", str(run), "--iterations", "2", "--patch", "16", "--batch", "2").returncode == 0
    assert run_cli("distill", str(clean), "--fit", str(run), "--iterations", "2", "--patch", "32", "--batch", "2").returncode == 0
    tuned = tmp_path / "tuned"
    r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "1", "--patch", "32", "--batch", "2",
                "--init", str(run / "model"), "--out", str(tuned))
    assert r.returncode == 0, r.stderr
    start, after = load_file(str(run / "model" / "model.safetensors")), load_file(str(tuned / "model.safetensors"))
    # one step at the warm-up lr (1 % of --lr) moves each weight by at most ~1e-5: a fresh start would differ by far more
    assert max(float((start[k] - after[k]).abs().max()) for k in start) < 1e-4
    assert f"--init {run / 'model'}" in (tuned / "entry.toml").read_text()
    r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "1", "--init", "color-awgn-small",
                "--out", str(tmp_path / "other"))
    assert r.returncode == 2 and b"--init color-awgn-small" in r.stderr and not (tmp_path / "other").exists()
