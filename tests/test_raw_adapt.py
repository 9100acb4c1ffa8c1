"""`fit`, `distill` and `adapt` on camera RAW files (training.raw_adapt): the sensor noise measured per camera and ISO
from the noisy files, the RAW model fine-tuned to it, and `denoise` giving each file the noise of its ISO."""

import json

import numpy as np
import pytest
from PIL import Image

from denoise_cli.inference.denoiser import Denoiser
from denoise_cli.inference.raw import RawDenoiser
from denoise_cli.io.dng import dng_bytes
from denoise_cli.models.mwcnn import build_mwcnn
from denoise_cli.noise.sensor import SensorNoise, estimate_sensor_noise
from denoise_cli.registry.checkpoint import save_model
from tests.conftest import run_cli

A, B = 6e-3, 4e-4


def _noisy_dngs(folder, n=2, size=192, seed=0):
    """Smooth scenes with Poisson–Gaussian noise (A, B), as 14-bit DNGs."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        clean = 0.05 + 0.6 * (x * (1 - i / 4) + y * i / 4) ** 1.5
        noisy = clean + rng.standard_normal(clean.shape) * np.sqrt(A * clean + B)
        raw = np.clip(np.round(noisy * (16383 - 512) + 512), 0, 16383).astype(np.uint16)
        (folder / f"shot{i}.dng").write_bytes(dng_bytes(raw, "RGGB", 512, 16383))


def _clean_photos(folder):
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (160, 160, 3), dtype=np.uint8)).save(folder / f"c{i}.png")


@pytest.mark.parametrize("a,b", [(1e-3, 2e-5), (4e-3, 2e-4), (1.2e-2, 1e-3)])
def test_sensor_noise_is_measured_from_noisy_planes_alone(a, b):
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:256, 0:256] / 256
    g = 0.1 + 0.7 * y
    clean = np.stack([0.05 + 0.8 * x, g, g, 0.6 * (x + y) / 2], -1)
    noisy = clean + rng.standard_normal(clean.shape) * np.sqrt(a * clean + b)
    found = estimate_sensor_noise([noisy])
    for level in (0.05, 0.3, 0.7):  # σ where photos have their pixels, within 10 %
        assert abs(np.sqrt(found.a[0] * level + found.b[0]) / np.sqrt(a * level + b) - 1) < 0.1


def test_a_raw_model_knows_the_noise_of_its_cameras_iso_and_the_nearest_one():
    table = {("Cam X", 800.0): SensorNoise.uniform(1e-3, 1e-5), ("Cam X", 3200.0): SensorNoise.uniform(4e-3, 1e-4)}
    raw = RawDenoiser(Denoiser(build_mwcnn(4, guides=4)), table)
    assert raw.noise_for("Cam X", 3200.0).a[0] == 4e-3
    assert raw.noise_for("Cam X", 1000.0).a[0] == 1e-3  # a third of a stop from 800
    assert raw.noise_for("Cam X", 12800.0) is None  # two stops from anything measured: blind
    assert raw.noise_for("Cam Y", 800.0) is None


def test_fit_then_distill_on_raw_files_learns_their_noise_and_denoise_uses_it(tmp_path):
    _noisy_dngs(tmp_path / "raw")
    _clean_photos(tmp_path / "clean")
    start = tmp_path / "start.safetensors"
    save_model(build_mwcnn(4, guides=4).eval(), start, half=True)

    r = run_cli("fit", str(tmp_path / "raw"), "--run", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    assert b"% at mid-grey" in r.stderr
    groups = json.loads((tmp_path / "run" / "sensor_noise.json").read_text())["groups"]
    assert len(groups) == 1 and groups[0]["files"] == 2
    sigma = np.sqrt(groups[0]["a"][0] * 0.3 + groups[0]["b"][0])
    assert abs(sigma / np.sqrt(A * 0.3 + B) - 1) < 0.15

    again = run_cli("fit", str(tmp_path / "raw"), "--run", str(tmp_path / "run"))
    assert again.returncode == 2 and b"--resume" in again.stderr  # a finished fit is not overwritten silently

    r = run_cli("distill", "--fit", str(tmp_path / "run"), str(tmp_path / "clean"), "--iterations", "2", "--init",
                str(start))
    assert r.returncode == 0, r.stderr
    model = tmp_path / "run" / "model" / "model.safetensors"
    assert model.exists()

    r = run_cli("denoise", str(tmp_path / "raw" / "shot0.dng"), "-o", str(tmp_path / "out"), "--raw-weights", str(model))
    assert r.returncode == 0, r.stderr
    assert b"the noise learned for this camera and ISO" in r.stderr
    assert (tmp_path / "out" / "shot0.tif").exists()


def test_distill_on_a_raw_fit_needs_clean_photos(tmp_path):
    _noisy_dngs(tmp_path / "raw", n=1)
    assert run_cli("fit", str(tmp_path / "raw"), "--run", str(tmp_path / "run")).returncode == 0
    r = run_cli("distill", "--fit", str(tmp_path / "run"), "--iterations", "2")
    assert r.returncode == 2 and b"CLEAN_DIR" in r.stderr and b"Traceback" not in r.stderr


def test_a_raw_profile_is_not_used_for_developed_photos(tmp_path):
    from denoise_cli.registry.profiles import Profile, choose
    from denoise_cli.io import Camera

    raw = Profile("cam-raw", tmp_path / "a.safetensors", "Cam X", [800.0], raw=True)
    rgb = Profile("cam", tmp_path / "b.safetensors", "Cam X", [800.0])
    cam = Camera("Cam", "X", 800.0)
    assert choose([raw, rgb], cam) is rgb and choose([raw, rgb], cam, raw=True) is raw
    assert choose([raw], cam) is None


def test_adapt_on_raw_files_with_a_profile_then_denoise_picks_it_by_camera(tmp_path):
    """The photographer's path: adapt on RAW files with --profile, then a plain `denoise` of a RAW file from that
    camera uses the profile (and the noise it measured); a second adapt with the same budget trains nothing."""
    _noisy_dngs(tmp_path / "raw", n=1)
    _clean_photos(tmp_path / "clean")
    env = {"DENOISE_CLI_PROFILES": str(tmp_path / "profiles")}
    args = ["adapt", "--run", str(tmp_path / "run"), str(tmp_path / "raw"), str(tmp_path / "clean"), "--time-budget",
            "3s", "--profile", "testcam-raw"]
    r = run_cli(*args, env=env)
    assert r.returncode == 0, r.stderr
    assert b"stored as profile testcam-raw" in r.stderr
    r = run_cli("profiles", "list", env=env)
    assert b"testcam-raw" in r.stdout and b"RAW files" in r.stdout
    r = run_cli("denoise", str(tmp_path / "raw" / "shot0.dng"), "-o", str(tmp_path / "out"), env=env)
    assert r.returncode == 0, r.stderr
    assert b"RAW profile testcam-raw" in r.stderr and b"the noise learned for this camera and ISO" in r.stderr
    r = run_cli(*args, env=env)
    assert r.returncode == 0 and b"adapted already" in r.stderr


