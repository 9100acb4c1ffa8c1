"""Stage 1 end to end on tiny images: the run folder has everything the issue lists."""

import json

import numpy as np
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import noisy_folder, run_cli
from denoise_cli.io import read_image
from denoise_cli.training.runs import Budget, Run
from denoise_cli.training.fit import fit
from denoise_cli.training.fit_config import PHASE_C, FitConfig
from denoise_cli.training.stage1 import Stage1
from denoise_cli.training.fit_run import FitRun
from denoise_cli.noise.levels import NoiseLevels


def test_fit_gray_synthetic_and_resume(tmp_path):
    d = noisy_folder(tmp_path, 1)
    run = tmp_path / "run"
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "4", "--patch", "24", "--batch", "2")
    assert r.returncode == 0, r.stderr
    for f in ("config.json", "checkpoint.safetensors", "metrics.jsonl",
              "noise_report.json", "noise_report.png", "denoised/n0.png", "denoised/n1.png"):
        assert (run / f).exists(), f
    assert json.loads((run / "config.json").read_text())["mode"] == "synthetic"
    assert json.loads((run / "config.json").read_text())["noise_cov"] == "diagonal"  # auto, synthetic mode
    assert json.loads((run / "config.json").read_text())["noise_lr"] == 1.0
    assert read_image(run / "denoised" / "n0.png").pixels.shape == (64, 64, 1)
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "4")
    assert r.returncode == 2 and b"--resume" in r.stderr
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "6", "--resume")
    assert r.returncode == 0, r.stderr
    finals = [r["step"] for r in Run(run).records() if r.get("final")]
    assert finals == [4, 6] and Run(run).metadata()["step"] == "6"  # the resume trained steps 5 and 6, no more


def test_extending_a_finished_fit_continues_phase_c(tmp_path, monkeypatch):
    """A larger budget on a finished run lowers the budget fraction; the phases must not go back."""
    d = noisy_folder(tmp_path, 1)
    run = Run(tmp_path / "run")
    cfg = FitConfig(mode="synthetic", channels=1, patch=16, batch=2)
    fit(d, run, cfg, Budget(6, None), torch.device("cpu"))
    assert run.reached_progress() == 1.0
    seen = []
    loss = Stage1.loss
    monkeypatch.setattr(Stage1, "loss", lambda self, y, g, p: seen.append(p) or loss(self, y, g, p))
    fit(d, run, None, Budget(12, None), torch.device("cpu"))
    assert len(seen) == 6 and min(seen) >= PHASE_C
    seen.clear()
    fresh = Run(tmp_path / "fresh")  # a fresh run still starts in phase A
    fit(d, fresh, cfg, Budget(6, None), torch.device("cpu"))
    assert seen[0] == 0.0 and fresh.reached_progress() == 1.0


def test_phase_b_trains_the_mean_by_its_mse_alone():
    """While μ is held, the likelihood must not reach D-BSN's shared layers: their gradient is the MSE's."""
    torch.manual_seed(0)
    stage = Stage1(FitConfig(mode="synthetic", channels=3, noise_cov="diagonal"), torch.device("cpu"))
    y, groups = torch.rand(2, 3, 24, 24), torch.zeros(2, dtype=torch.long)
    last = stage.dbsn.tail[-1]

    def grads(loss: torch.Tensor) -> dict[str, torch.Tensor]:
        stage.dbsn.zero_grad(set_to_none=False)
        loss.backward()
        return {n: p.grad.clone() for n, p in stage.dbsn.named_parameters() if p is not last.weight and p is not last.bias}

    held = grads(stage.loss(y, groups, 0.5))
    mse = grads(torch.nn.functional.mse_loss(stage.dbsn(y)[0], y))
    assert all(torch.allclose(held[n], mse[n], atol=1e-7) for n in held)
    joint = grads(stage.loss(y, groups, PHASE_C))  # phase C: the likelihood trains everything
    assert any(not torch.allclose(joint[n], mse[n], atol=1e-7) for n in joint)


def test_real_mode_trains_with_the_exact_likelihood_and_sigma_mu_per_group():
    """Real mode's default: phase C's loss is the exact Gaussian likelihood with Σμ scaled per Bayer group and a
    diagonal Σn; synthetic mode keeps the paper's eq. 8 and one Σμ, and real mode with eq. 8 its full Σn."""
    from denoise_cli.models.cholesky import covariance
    from denoise_cli.training.likelihood import gaussian_nll

    synthetic = FitConfig(mode="synthetic", channels=3)
    assert (synthetic.likelihood, synthetic.group_sigma_mu, synthetic.noise_cov) == ("constrained", False, "diagonal")
    eq8 = FitConfig(mode="real", channels=3, likelihood="constrained")
    assert (eq8.group_sigma_mu, eq8.noise_cov) == (False, "full")
    cfg = FitConfig(mode="real", channels=3)
    assert (cfg.likelihood, cfg.group_sigma_mu, cfg.noise_cov) == ("exact", True, "diagonal")
    torch.manual_seed(0)
    stage = Stage1(cfg, torch.device("cpu"))
    with torch.no_grad():
        stage.mu_scale.log_scale.uniform_(-0.5, 0.5)
    y, groups = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    mu, l_mu = stage.dbsn(y)
    scaled = covariance(l_mu * stage.mu_scale.log_scale[groups].exp()[:, None, None, :, None])
    expected = gaussian_nll(y, mu, scaled, covariance(stage.noise(y, groups)))
    assert torch.allclose(stage.loss(y, groups, PHASE_C), expected)


def test_the_noise_model_trains_at_its_own_multiple_of_the_learning_rate(tmp_path):
    d = noisy_folder(tmp_path, 1)
    run = Run(tmp_path / "run")
    fit(d, run, FitConfig(mode="synthetic", channels=1, patch=16, batch=2, noise_lr=3.0), Budget(3, None),
        torch.device("cpu"))
    dbsn, noise = torch.load(run.path / "optimizer.pt", weights_only=True)["param_groups"]
    assert noise["lr"] == pytest.approx(3.0 * dbsn["lr"])
    # 1 by default in both modes: 3 cost stage 1 and under-read clean images in 4 000-step synthetic fits, and
    # over-read real photos
    assert FitConfig(mode="real", channels=3).noise_lr == FitConfig(mode="synthetic", channels=3).noise_lr == 1.0


def test_the_phases_start_where_the_config_says():
    """The noise model gets a gradient from phase B on, at whatever budget fraction the config puts it."""
    torch.manual_seed(0)
    y, groups = torch.rand(2, 1, 24, 24), torch.zeros(2, dtype=torch.long)
    for phase_b, expect in ((0.4, False), (0.1, True)):
        stage = Stage1(FitConfig(mode="synthetic", channels=1, phase_b=phase_b, phase_c=0.8), torch.device("cpu"))
        stage.loss(y, groups, 0.2).backward()
        assert any(p.grad is not None for p in stage.noise.parameters()) == expect


def test_fit_color_real_mode(tmp_path):
    d = noisy_folder(tmp_path, 3)
    run = tmp_path / "run"
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "2", "--patch", "8", "--batch", "16")
    assert r.returncode == 0, r.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["noise_cov"] == "diagonal"  # auto, real mode
    assert config["noise_lr"] == 1.0
    assert config["likelihood"] == "exact"  # auto, real mode
    assert config["sigma_mu_start"] == "small"  # auto, real mode
    stage = FitRun(run).stage1(torch.device("cpu"))
    assert stage.dbsn.config.sigma_mu_start == "small"
    assert stage.mu_scale is not None  # Σμ per Bayer group
    report = json.loads((run / "noise_report.json").read_text())
    assert set(report["sigma"]) == set(report["sigma_on_images"]) == {"group0", "group1", "group2", "group3"}
    assert (run / "correlated_noise.safetensors").exists()  # real mode: the spatially correlated model distill draws
    assert set(report["correlated"]["correlations"]) == {"horizontal", "vertical", "channels"}
    assert sum(sum(c) for c in report["pixels_on_images"]["group0"]) == 32 * 32 * 3 * 2  # 2 images, ¼ of 64² each
    assert read_image(run / "denoised" / "n1.png").pixels.shape == (64, 64, 3)
    # auto fusion: both scored on the held-out band, the better one kept, named in the report and used again on reload
    assert set(report["fusion"]["scores_db"]) == {"bayes", "local"}
    chosen = max(report["fusion"]["scores_db"], key=report["fusion"]["scores_db"].get)
    assert report["fusion"]["chosen"] == chosen == stage.fusion
    assert stage.levels is not None and stage.levels.sigmas.shape == (3, 16)


def _fit_twice_and_report(tmp_path, *options: str) -> tuple[Path, Path, dict]:
    """A two-step colour fit with ``options``: the photos' folder, the run and its noise report."""
    d = noisy_folder(tmp_path, 3)
    run = tmp_path / "run"
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "2", *options)
    assert r.returncode == 0, r.stderr
    return d, run, json.loads((run / "noise_report.json").read_text())


def test_a_fixed_fusion_is_the_only_one_scored_and_used(tmp_path):
    d, run, report = _fit_twice_and_report(tmp_path, "--patch", "8", "--batch", "16", "--fusion", "local")
    assert report["fusion"]["chosen"] == "local" and set(report["fusion"]["scores_db"]) == {"local"}
    stage = FitRun(run).stage1(torch.device("cpu"))
    y = read_image(d / "n0.png").pixels
    assert stage.fusion == "local"
    out = stage.denoise(y)
    stage.fusion = "bayes"
    assert abs(stage.denoise(y) - out).max() > 1e-3  # the choice changes the result
    assert run_cli("fit", str(d), "--run", str(tmp_path / "x"), "--iterations", "1",
                   "--fusion", "median").returncode == 2


def test_a_real_mode_exact_run_saves_and_resumes_its_per_group_sigma_mu(tmp_path):
    """Real mode's exact likelihood (its default) adds GroupScale: its trained scales reach the checkpoint, come back
    in FitRun.stage1 (distill's path) and carry on training on --resume."""
    d = noisy_folder(tmp_path, 3)
    run = tmp_path / "run"
    args = ("fit", str(d), "--run", str(run), "--patch", "8", "--batch", "16")
    r = run_cli(*args, "--iterations", "5", "--verbose")
    assert r.returncode == 0, r.stderr
    assert b"exact likelihood" in r.stderr  # --verbose names the settings
    assert b"too few to learn much" in r.stderr  # and five steps are not a useful fit
    first = FitRun(run).stage1(torch.device("cpu")).mu_scale.log_scale.detach().clone()
    assert (first != 0).any()  # phases B and C trained it (it starts at 0) and the checkpoint kept it
    r = run_cli(*args, "--iterations", "8", "--resume")
    assert r.returncode == 0, r.stderr
    last = load_file(str(run / "checkpoint.safetensors"))  # the latest weights (FitRun hands on the best-scoring)
    again = next(v for k, v in last.items() if k.endswith("log_scale"))
    assert (again != first).any()


def test_fit_in_synthetic_mode_defaults_to_a_diagonal_noise_covariance(tmp_path):
    d = noisy_folder(tmp_path, 3)
    run = tmp_path / "run"
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "2", "--patch", "16", "--batch", "2",
                "--mode", "synthetic")
    assert r.returncode == 0, r.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["noise_cov"] == "diagonal"
    assert config["sigma_mu_start"] == "large"  # auto, synthetic mode
    stage = FitRun(run).stage1(torch.device("cpu"))  # the saved run rebuilds with the same shape (distill does this)
    L = stage.noise(torch.rand(1, 3, 4, 4), 0)
    assert (L[..., 1, 0] == 0).all() and (L[..., 2, :2] == 0).all()
    assert run_cli("fit", str(d), "--run", str(tmp_path / "x"), "--iterations", "1",
                   "--noise-cov", "banded").returncode == 2
    assert run_cli("fit", str(d), "--run", str(tmp_path / "y"), "--iterations", "1",
                   "--noise-lr", "0").returncode == 2
    assert run_cli("fit", str(d), "--run", str(tmp_path / "z"), "--iterations", "1",
                   "--likelihood", "approximate").returncode == 2
    assert run_cli("fit", str(d), "--run", str(tmp_path / "w"), "--iterations", "1",
                   "--sigma-mu-start", "medium").returncode == 2
    r = run_cli("fit", str(d), "--run", str(tmp_path / "full"), "--iterations", "1", "--patch", "16", "--batch", "2",
                "--mode", "synthetic", "--noise-cov", "full", "--noise-lr", "2", "--likelihood", "exact",
                "--sigma-mu-start", "small")
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "full" / "config.json").read_text())
    assert config["sigma_mu_start"] == "small"
    assert config["noise_lr"] == 2.0
    assert config["likelihood"] == "exact"
    L = FitRun(tmp_path / "full").stage1(torch.device("cpu")).noise(torch.rand(1, 3, 4, 4) + 0.5, 0)
    assert (L[..., 1, 0] != 0).any()  # the full factor has cross-channel terms


def test_fit_needs_a_budget_and_images(tmp_path):
    assert run_cli("fit", str(tmp_path), "--run", str(tmp_path / "r")).returncode == 2
    r = run_cli("fit", str(tmp_path), "--run", str(tmp_path / "r"), "--iterations", "1")
    assert r.returncode == 2 and b"no images" in r.stderr


def test_bad_budgets_and_a_missing_resume_are_refused_before_anything_is_made(tmp_path):
    d = noisy_folder(tmp_path, 1)
    run = tmp_path / "run"
    for args in (["--iterations", "0"], ["--iterations", "-3"], ["--time-budget", "0"], ["--time-budget", "soon"],
                 ["--iterations", "2", "--resume"], []):
        r = run_cli("fit", str(d), "--run", str(run), *args)
        assert r.returncode == 2 and b"Traceback" not in r.stderr, (args, r.stderr)
        assert not run.exists(), args
    assert b"no run" in run_cli("fit", str(d), "--run", str(run), "--iterations", "2", "--resume").stderr
    (tmp_path / "empty").mkdir()
    r = run_cli("fit", str(tmp_path / "empty"), "--run", str(run), "--iterations", "2")
    assert r.returncode == 2 and b"no images" in r.stderr and not run.exists()


def test_the_blind_mean_never_sees_its_own_pixel():
    """The correlated noise model is read off y − μ: μ at a pixel must not move with that pixel's own value, or the
    residual would lose the noise there."""
    torch.manual_seed(0)
    stage = Stage1(FitConfig(mode="real", channels=3), torch.device("cpu"))
    y = torch.rand(64, 64, 3).numpy()
    before = stage.blind_mean(y)
    bumped = y.copy()
    bumped[21, 38] += 0.5
    after = stage.blind_mean(bumped)
    assert abs(after[21, 38] - before[21, 38]).max() < 1e-6
    assert abs(after - before).max() > 1e-4  # its neighbours do see it


@pytest.mark.parametrize("fusion", ["bayes", "local"])
def test_one_pass_gives_what_denoise_and_blind_mean_give_apart(fusion):
    """fit reads x̂ and μ of each photo from one D-BSN pass; whole and tiled, they are the two separate results."""
    torch.manual_seed(0)
    stage = Stage1(FitConfig(mode="real", channels=3, fusion=fusion), torch.device("cpu"))
    y = torch.rand(72, 64, 3).numpy()
    stage.levels = NoiseLevels.estimate([y])
    for tile in (512, 32):
        x, mu = stage.denoise_with_mean(y, tile=tile, overlap=8)
        assert np.allclose(x, stage.denoise(y, tile=tile, overlap=8), atol=1e-6)
        assert np.allclose(mu, stage.blind_mean(y, tile=tile, overlap=8), atol=1e-6)


def test_the_report_says_how_the_photos_were_saved(tmp_path):
    from PIL import Image

    from denoise_cli.training.fit import jpeg_census

    rng = np.random.default_rng(0)
    files = []
    for i, (q, sub) in enumerate([(80, 2), (80, 2), (95, 0)]):
        files.append(tmp_path / f"p{i}.jpg")
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(files[-1], quality=q, subsampling=sub)
    files.append(tmp_path / "p.png")
    Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(files[-1])
    assert jpeg_census(files) == {"quality": 80, "subsampling": "4:2:0", "photos": 2, "of": 4}
    assert jpeg_census(files[-1:]) == {"photos": 0}
