"""Stage 2 on tiny runs: distill's outputs, its synthesised noise, its options, and adapt."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from conftest import noisy_folder, run_cli
from denoise_cli.errors import ConfigError
from denoise_cli.io import Photo, read_image, write_image
from denoise_cli.models.mwcnn import build_mwcnn
from denoise_cli.training.patches import random_patches
from denoise_cli.training.runs import Run
from denoise_cli.training.distill import (DistillConfig, make_step_loss, noise_source, parse_noise_scale,
                                         saved_distill_config, synthesize)
from denoise_cli.training.fit_config import FitConfig
from denoise_cli.noise.calibrate import load_pipeline
from denoise_cli.noise.pipeline import CameraPipeline
from denoise_cli.training.stage1 import Stage1


def _clean_folder(tmp_path):
    clean = tmp_path / "clean"
    y, x = np.mgrid[0:80, 0:80] / 80.0
    write_image(Photo(np.stack([y, x, 1 - x], 2).astype(np.float32)), clean / "c.png")
    return clean


def test_distill_after_fit_gives_weights_denoise_can_use(tmp_path):
    d = noisy_folder(tmp_path, 3)
    clean = _clean_folder(tmp_path)
    run = tmp_path / "run"
    r = run_cli("fit", str(d), "--run", str(run), "--iterations", "2", "--patch", "8", "--batch", "16")
    assert r.returncode == 0 and b"noise reduction" in r.stderr  # the calibrated camera, in words
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
    assert saved["noise_passes"] == 2  # the default: the noise model read at a noisy draw
    assert saved["lr"] == 1e-3 and "--lr 0.001 " in (run / "model" / "entry.toml").read_text()
    r = run_cli("distill", str(clean), "--fit", str(tmp_path), "--iterations", "1")
    assert r.returncode == 2 and b"not a finished fit run" in r.stderr
    r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "1", "--noise-scale", "2:1",
                "--out", str(tmp_path / "other"))
    assert r.returncode == 2 and b"--noise-scale" in r.stderr and not (tmp_path / "other").exists()
    assert load_pipeline(run / "camera_pipeline.json").jpeg_quality is None  # colour photos: a camera calibrated
    assert "pipeline" in json.loads((run / "noise_report.json").read_text())  # ... and reported (PNGs: no JPEG)
    r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "2", "--patch", "32", "--batch", "4",
                "--noise-model", "pipeline", "--pairs-share", "0", "--out", str(tmp_path / "piped"))
    assert r.returncode == 0, r.stderr
    assert "--noise-model pipeline" in (tmp_path / "piped" / "entry.toml").read_text()
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


def test_the_calibrated_camera_makes_the_patches_with_its_noise_scaled_per_patch(gray_fit):
    camera = CameraPipeline(shot=(2e-3,) * 3, read=(1e-5,) * 3)
    cfg = DistillConfig(fit_run=str(gray_fit), clean_dir=[], noise_model="pipeline")
    source = noise_source(cfg, None, None, camera, np.random.default_rng(0))
    x = torch.full((2, 3, 64, 64), 0.4)
    y = source(x, torch.tensor([1.0, 2.0]))
    assert y.shape == x.shape and torch.equal(y, torch.round(y * 255) / 255)  # 8-bit photos
    sd = (y - x).std(dim=(1, 2, 3))
    assert 1.7 < float(sd[1] / sd[0]) < 2.3 and float(sd[0]) * 255 > 2  # d scales σ
    with pytest.raises(ConfigError, match="no calibrated camera pipeline"):
        noise_source(cfg, None, None, None)
    with pytest.raises(ConfigError, match="noise model"):
        DistillConfig(fit_run=str(gray_fit), clean_dir=[], noise_model="camera")


def test_stage1_weight_and_precision_are_set_and_recorded(tmp_path, gray_fit):
    clean = _clean_folder(tmp_path)
    run = gray_fit
    r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "2", "--patch", "32", "--batch", "4",
                "--stage1-weight", "0", "--precision", "bf16", "--noise-passes", "3")
    assert r.returncode == 0, r.stderr
    saved = json.loads((run / "model" / "config.json").read_text())
    assert saved["lam"] == 0 and saved["precision"] == "bf16" and saved["noise_passes"] == 3
    entry = (run / "model" / "entry.toml").read_text()
    assert "--stage1-weight 0" in entry and "--precision bf16" in entry and "bf16)" in entry and "--noise-passes 3" in entry
    for bad in (["--stage1-weight", "-1"], ["--precision", "fp16"], ["--arch", "huge"],
                ["--noise-passes", "0"]):
        r = run_cli("distill", str(clean), "--fit", str(run), "--iterations", "1", *bad, "--out", str(tmp_path / "other"))
        assert r.returncode == 2 and bad[0].encode() in r.stderr and not (tmp_path / "other").exists(), r.stderr


def test_several_clean_folders_are_used_and_recorded(tmp_path, gray_fit):
    colour = _clean_folder(tmp_path)
    gray = tmp_path / "gray"
    write_image(Photo(np.random.default_rng(5).random((72, 72, 1)).astype(np.float32)), gray / "g.png")
    run = gray_fit
    r = run_cli("distill", str(colour), str(gray), "--fit", str(run), "--iterations", "2", "--patch", "32", "--batch", "4")
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "model" / "config.json").read_text())["clean_dir"] == [str(colour), str(gray)]
    assert f"--fit {run} {colour} {gray} --out" in (run / "model" / "entry.toml").read_text()
    r = run_cli("distill", str(colour), str(tmp_path / "missing"), "--fit", str(run), "--iterations", "1",
                "--out", str(tmp_path / "other"))
    assert r.returncode == 2 and b"missing" in r.stderr and not (tmp_path / "other").exists()


def test_learning_rate_defaults_by_arch_and_is_recorded(tmp_path, gray_fit):
    assert DistillConfig("-", "-").lr == 1e-3 and DistillConfig("-", "-", arch="full").lr == 2.5e-4
    assert DistillConfig("-", "-", arch="full", lr=1e-3).lr == 1e-3  # an explicit lr wins
    run = gray_fit
    r = run_cli("distill", str(_clean_folder(tmp_path)), "--fit", str(run), "--arch", "full", "--iterations", "1",
                "--patch", "16", "--batch", "2")
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "model" / "config.json").read_text())["lr"] == 2.5e-4
    assert "--arch full --patch 16 --batch 2 --lr 0.00025 " in (run / "model" / "entry.toml").read_text()


def test_bf16_runs_the_network_in_bf16_and_keeps_loss_and_gradients_fp32():
    cpu = torch.device("cpu")
    stage = Stage1(FitConfig(mode="synthetic", channels=1), cpu)
    model = build_mwcnn(1, "small")
    seen = []
    model.enc2.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))  # an inner block
    cfg = DistillConfig(fit_run="-", clean_dir="-", patch=16, batch=2)
    cfg.resolve("synthetic", 3)
    clean = [np.random.default_rng(0).random((32, 32, 1)).astype(np.float32)]
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        loss = make_step_loss(cfg, stage, model, clean, [], np.random.default_rng(1), cpu, precision)(0)
        loss.backward()
        assert seen[-1] == dtype and loss.dtype == torch.float32
        assert all(p.grad.dtype == torch.float32 for p in model.parameters())


def test_adapt_runs_fit_then_distill_and_stores_a_profile_for_the_photos_camera(tmp_path):
    from PIL import Image

    d = noisy_folder(tmp_path, 1)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Maker", "Cam A"
    exif.get_ifd(0x8769)[0x8827] = 1600
    for f in d.iterdir():  # the photos name their camera and ISO
        photo = read_image(f)
        photo.exif = exif.tobytes()
        write_image(photo, f, overwrite=True)
    clean = tmp_path / "clean"
    write_image(Photo(np.random.default_rng(5).random((72, 72, 1)).astype(np.float32)), clean / "c.png")
    env = {"DENOISE_CLI_PROFILES": str(tmp_path / "profiles")}
    r = run_cli("adapt", str(d), str(clean), "--run", str(tmp_path / "cam"), "--time-budget", "4s", "--profile", "cam-a",
                env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cam" / "noise_report.json").exists() and (tmp_path / "cam" / "denoised" / "n0.png").exists()
    assert (tmp_path / "cam" / "model" / "model.safetensors").exists()
    (stored,) = json.loads(run_cli("profiles", "list", "--json", env=env).stdout)
    assert (stored["name"], stored["camera"], stored["isos"]) == ("cam-a", "Maker Cam A", [1600.0])
    assert stored["sigma_mid"] and "distill" in stored["made_by"]
    again = run_cli("adapt", str(d), str(clean), "--run", str(tmp_path / "cam"), "--time-budget", "4s", env=env)
    assert again.returncode == 0 and b"has adapted already within 4 seconds" in again.stderr
    assert b"Adapting" not in again.stderr and b"done:" not in again.stderr  # no stage ran again


def test_init_starts_from_given_weights_and_rejects_a_mismatch(tmp_path, gray_fit):
    clean = _clean_folder(tmp_path)
    run = gray_fit
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
    assert r.returncode == 2 and b"initial weights color-awgn-small" in r.stderr and not (tmp_path / "other").exists()


def test_noise_passes_read_the_noise_model_at_the_previous_draw():
    class Stub:  # σ grows with a pixel's distance from 0.5, so the clean flat x reads low and a noisy one higher
        cfg = SimpleNamespace(mode="synthetic")

        def noise(self, xs, groups):
            return torch.diag_embed((0.02 + 0.3 * (xs - 0.5).abs()).permute(0, 2, 3, 1))

    torch.manual_seed(0)
    x = torch.full((2, 3, 64, 64), 0.5)
    once, twice = ((synthesize(Stub(), x, passes=k) - x).std().item() for k in (1, 2))
    assert abs(once - 0.02) < 0.0015  # read at the clean x
    # read at x + n', n' ~ N(0, 0.02²): E[(0.02 + 0.3|n'|)²] = 0.02² + 2·0.02·0.3·0.02·√(2/π) + 0.09·0.02²
    assert abs(twice - (4e-4 + 2.4e-4 * (2 / np.pi) ** 0.5 + 3.6e-5) ** 0.5) < 0.0015
    assert torch.equal(synthesize(Stub(), x, torch.zeros(2), passes=3), torch.round(x * 255) / 255)  # d: last draw


def test_runs_saved_before_noise_passes_resume_with_one_pass(tmp_path):
    cfg = {k: v for k, v in DistillConfig(fit_run="f", clean_dir="c").__dict__.items() if k != "noise_passes"}
    (tmp_path / "config.json").write_text(json.dumps({"stage": "distill", **cfg}))
    assert saved_distill_config(Run(tmp_path)).noise_passes == 1
    assert DistillConfig(fit_run="f", clean_dir="c").noise_passes == 2


def test_step_loss_is_synthetic_mse_plus_lambda_times_stage1_mse():
    cpu = torch.device("cpu")
    stage = Stage1(FitConfig(mode="synthetic", channels=1), cpu)
    model = build_mwcnn(1, "small")
    cfg = DistillConfig(fit_run="-", clean_dir="-", patch=16, batch=8, lam=0.1)
    cfg.resolve("synthetic", 1)  # the paper's batch: 1/8 from the photos
    data = np.random.default_rng(0)
    clean = [data.random((32, 32, 1)).astype(np.float32)]
    pairs = [data.random((32, 32, 2)).astype(np.float32)]  # noisy photo | its stage-1 result
    torch.manual_seed(0)
    got = make_step_loss(cfg, stage, model, clean, pairs, np.random.default_rng(1), cpu)(0)
    torch.manual_seed(0)  # the same draws, in the same order, with one forward per kind of pair
    rng = np.random.default_rng(1)
    x = random_patches(clean, 16, 7, rng)
    y = synthesize(stage, x, torch.empty(7).uniform_(*cfg.noise_scale), cfg.noise_passes)
    yx = random_patches(pairs, 16, 1, rng)
    with torch.no_grad():
        want = F.mse_loss(model(y), x) + 0.1 * F.mse_loss(model(yx[:, :1]), yx[:, 1:])
    assert torch.allclose(got, want, rtol=1e-5), (got, want)


def test_parse_noise_scale_takes_lo_hi_and_refuses_the_rest():
    assert parse_noise_scale("0.9:1.1") == (0.9, 1.1) and parse_noise_scale("0:2") == (0.0, 2.0)
    for bad in ("2:1", "-1:1", "1", "a:b", "1:2:3", ""):
        with pytest.raises(ValueError, match="LO:HI"):
            parse_noise_scale(bad)


def test_a_corrupt_clean_image_is_named(tmp_path, gray_fit):
    clean = _clean_folder(tmp_path)
    (clean / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    r = run_cli("distill", str(clean), "--fit", str(gray_fit), "--iterations", "1", "--patch", "16", "--batch", "2")
    assert r.returncode != 0 and b"broken.png" in r.stderr and b"Traceback" not in r.stderr
    assert not (gray_fit / "model").exists()


def test_a_resumed_adapt_leaves_distill_what_is_left_of_the_one_budget(tmp_path, monkeypatch):
    """fit trained 60 % of the budget in an earlier session: distill gets the 40 % left, not the whole budget again."""
    import denoise_cli.training.adapt as adapt_module

    seen = {}

    def fake_fit(noisy, run, cfg, budget, device, **kw):
        budget.resume(1000, 0.6 * 3600)  # a finished fit from an earlier session
        return type("Fitted", (), {"report": {}})()

    def fake_distill(cfg, out, budget, device, **kw):
        seen["seconds"] = budget.seconds
        return out.path / "model.safetensors"

    monkeypatch.setattr(adapt_module, "fit", fake_fit)
    monkeypatch.setattr(adapt_module, "distill", fake_distill)
    adapt_module.adapt(tmp_path, [], tmp_path / "run", 3600, torch.device("cpu"))
    assert seen["seconds"] == pytest.approx(0.4 * 3600, abs=5)


def test_entry_of_a_model_made_without_clean_images_reads_as_whole_sentences(tmp_path, gray_fit):
    out = tmp_path / "pairs"
    r = run_cli("distill", "--fit", str(gray_fit), "--iterations", "1", "--patch", "32", "--batch", "2",
                "--pairs-share", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    entry = (out / "entry.toml").read_text()
    assert "stage-1 results (no clean images)" in entry and "; no clean images" in entry
    assert 'from "' not in entry and 'clean: "' not in entry


def test_adapt_can_train_on_the_calibrated_camera_and_needs_clean_images_for_it(tmp_path):
    d = noisy_folder(tmp_path, 3)
    run = tmp_path / "cam"
    r = run_cli("adapt", str(d), "--run", str(run), "--time-budget", "4s", "--train-on", "camera")
    assert r.returncode == 2 and b"give CLEAN_DIR" in r.stderr and not run.exists()
    r = run_cli("adapt", str(d), str(_clean_folder(tmp_path)), "--run", str(run), "--time-budget", "6s",
                "--train-on", "camera")
    assert r.returncode == 0, r.stderr
    saved = json.loads((run / "model" / "config.json").read_text())
    assert (saved["noise_model"], saved["noisy_fraction"], saved["keep"]) == ("pipeline", 0.0, "last")
    assert (run / "camera_pipeline.json").exists() and (run / "model" / "model.safetensors").exists()
