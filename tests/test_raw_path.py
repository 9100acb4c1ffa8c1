"""Camera RAW denoised before demosaicking: the guided RAW model (models.mwcnn with guides), sensor noise and
unprocessing (noise.sensor), and the `denoise` path through them (inference.raw)."""

import numpy as np
import pytest
import torch

from denoise_cli.io import read_image
from denoise_cli.io.bayer import BAYER_LAYOUTS, develop, open_raw, pack, unpack
from denoise_cli.io.dng import dng_bytes
from denoise_cli.models.mwcnn import MWCNNConfig, build_mwcnn
from denoise_cli.models.mwcnn_folded import fold_wavelets
from denoise_cli.noise.sensor import (DEFAULT_SENSOR_PRIOR, SensorNoise, add_noise, from_canonical, noise_guides,
                                      to_canonical)
from denoise_cli.registry.checkpoint import load_model, save_model
from tests.conftest import run_cli


def _scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth 14-bit mosaic with a little noise (black 512, white 16383)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    v = 0.2 + 0.5 * (x / w) * (0.5 + 0.5 * np.sin(y / 7.0)) + rng.normal(0, 0.01, (h, w))
    return np.clip(np.round(v * (16383 - 512) + 512), 0, 16383).astype(np.uint16)


def _identity_raw_model(path) -> None:
    """A RAW model whose last convolution is zero: the residual network returns its input planes unchanged."""
    model = build_mwcnn(4, "small", guides=4)
    with torch.no_grad():
        model.dec1[-1].weight.zero_()
        model.dec1[-1].bias.zero_()
    save_model(model.eval(), path, half=True)


def test_a_guided_mwcnn_denoises_its_channels_reads_its_guides_and_folds_to_the_same_function():
    model = build_mwcnn(4, "small", guides=4).eval()
    x = torch.rand(2, 8, 37, 45)
    with torch.no_grad():
        y, folded = model(x), fold_wavelets(model)(x)
        y_other_guides = model(torch.cat([x[:, :4], torch.rand(2, 4, 37, 45)], 1))
    assert y.shape == (2, 4, 37, 45)
    assert torch.allclose(y, folded, atol=1e-5)
    assert not torch.allclose(y, y_other_guides)  # the guides reach the output
    assert MWCNNConfig.from_dict(model.config.to_dict()) == model.config
    assert "guides" not in build_mwcnn(3).config.to_dict()  # models without guides describe themselves as before
    with pytest.raises(ValueError, match="guides"):
        MWCNNConfig.from_dict({**model.config.to_dict(), "guides": 99})


@pytest.mark.parametrize("cfa", BAYER_LAYOUTS)
def test_planes_go_to_the_canonical_order_and_back(cfa):
    m = np.arange(8 * 6, dtype=np.float32).reshape(8, 6)
    planes = pack(m)
    assert np.array_equal(unpack(planes), m)
    canon = to_canonical(planes, cfa)
    assert np.array_equal(canon[..., 0], planes[..., cfa.index("R")])
    assert np.array_equal(canon[..., 3], planes[..., cfa.index("B")])
    assert np.array_equal(from_canonical(canon, cfa), planes)


def test_sensor_noise_has_variance_a_x_plus_b_and_the_guides_say_its_sigma():
    rng = np.random.default_rng(0)
    noise = SensorNoise((1e-3, 2e-3, 2e-3, 4e-3), (1e-5, 2e-5, 2e-5, 1e-4))
    for x in (0.05, 0.4):
        clean = np.full((200, 200, 4), x, np.float32)
        noisy = add_noise(clean, noise, rng)
        expected = np.array(noise.a) * x + np.array(noise.b)
        assert np.allclose(noisy.var(axis=(0, 1)), expected, rtol=0.05)
        guides = noise_guides(torch.from_numpy(clean).permute(2, 0, 1)[None], torch.tensor([noise.a]),
                              torch.tensor([noise.b]))
        assert np.allclose(guides[0, :, 0, 0].numpy() ** 2, expected, rtol=1e-4)


def test_unprocessed_photos_are_darker_sensor_planes_in_range():
    rng = np.random.default_rng(1)
    srgb = rng.uniform(0.2, 0.9, (64, 48, 3)).astype(np.float32)
    planes = DEFAULT_SENSOR_PRIOR.unprocess(srgb, rng)
    assert planes.shape == (32, 24, 4) and planes.dtype == np.float32
    assert planes.min() >= 0 and planes.max() <= 1 and planes.mean() < srgb.mean()  # linear light, exposed down


@pytest.mark.parametrize("cfa", BAYER_LAYOUTS)
def test_denoise_on_raw_writes_the_planes_back_in_the_files_own_layout(tmp_path, cfa):
    """With a RAW model that changes nothing, the RAW path's output is exactly the file developed: the planes went
    to the canonical order, through the model and back into the raw buffer at the right sites."""
    _identity_raw_model(tmp_path / "identity.safetensors")
    data = dng_bytes(_scene(), cfa, 512, 16383)
    (tmp_path / "shot.dng").write_bytes(data)
    r = run_cli("denoise", str(tmp_path / "shot.dng"), "--raw-weights", str(tmp_path / "identity.safetensors"))
    assert r.returncode == 0, r.stderr
    assert b"before demosaicking" in r.stderr and f"{cfa} Bayer planes".encode() in r.stderr
    out = read_image(tmp_path / "shot_denoised.tif", raw=True).pixels
    with open_raw(data) as raw:
        expected = develop(raw)
    assert out.dtype == np.uint16 and out.shape == expected.shape
    assert np.array_equal(out, expected)


def test_training_batches_pair_noisy_planes_and_guides_with_clean_planes_some_blind():
    from denoise_cli.training.raw_default import sensor_batch

    rng = np.random.default_rng(4)
    srgb = torch.rand(16, 3, 32, 32)
    inputs, clean = sensor_batch(srgb, rng, blind=0.5)
    assert inputs.shape == (16, 8, 16, 16) and clean.shape == (16, 4, 16, 16)
    blind = (inputs[:, 4:].flatten(1).abs().sum(1) == 0)
    assert 0 < int(blind.sum()) < 16  # some patches without guides, most with
    fixed = SensorNoise.uniform(2e-2, 1e-3)
    inputs, clean = sensor_batch(srgb, rng, fixed=[fixed], blind=0.0)
    expected = torch.sqrt(2e-2 * inputs[:, :4].clamp(0, 1) + 1e-3)
    assert torch.allclose(inputs[:, 4:], expected, atol=1e-5)
    assert float((inputs[:, :4] - clean).std()) > 0.02  # the fixed noise was added


def test_no_raw_domain_keeps_developing_first(tmp_path):
    _identity_raw_model(tmp_path / "identity.safetensors")
    (tmp_path / "shot.dng").write_bytes(dng_bytes(_scene(), "RGGB", 512, 16383))
    r = run_cli("denoise", str(tmp_path / "shot.dng"), "--no-raw-domain", "--raw-weights",
                str(tmp_path / "identity.safetensors"))
    assert r.returncode == 0, r.stderr
    assert b"demosaiced to sRGB" in r.stderr and b"before demosaicking" not in r.stderr


def test_raw_weights_that_are_not_a_raw_model_are_one_usage_line(tmp_path):
    save_model(build_mwcnn(3).eval(), tmp_path / "rgb.safetensors")
    (tmp_path / "shot.dng").write_bytes(dng_bytes(_scene(), "RGGB", 512, 16383))
    r = run_cli("denoise", str(tmp_path / "shot.dng"), "--raw-weights", str(tmp_path / "rgb.safetensors"))
    assert r.returncode == 2 and b"not a RAW model" in r.stderr and b"Traceback" not in r.stderr


def test_an_x_trans_sensor_falls_back_to_developing_first_with_a_note(tmp_path):
    xtrans = "GGRGGB" "GGBGGR" "BRGRBG" "GGBGGR" "GGRGGB" "RBGBRG"
    mosaic = np.random.default_rng(5).integers(4000, 9000, (600, 600)).astype(np.uint16)
    (tmp_path / "fuji.dng").write_bytes(dng_bytes(mosaic, xtrans, 512, 16383))
    _identity_raw_model(tmp_path / "identity.safetensors")
    r = run_cli("denoise", str(tmp_path / "fuji.dng"), "--raw-weights", str(tmp_path / "identity.safetensors"))
    assert r.returncode == 0, r.stderr
    assert b"not a Bayer sensor (colour filter pattern 6" in r.stderr and b"before demosaicking" not in r.stderr
    assert read_image(tmp_path / "fuji_denoised.tif", raw=True).pixels.shape == (600, 600, 3)


def test_a_corrupt_raw_file_fails_alone_and_the_batch_goes_on(tmp_path):
    _identity_raw_model(tmp_path / "identity.safetensors")
    (tmp_path / "a.dng").write_bytes(dng_bytes(_scene(), "RGGB", 512, 16383))
    (tmp_path / "b.dng").write_bytes(b"II*\0" + b"\0" * 64)
    r = run_cli("denoise", str(tmp_path / "a.dng"), str(tmp_path / "b.dng"), "--raw-weights",
                str(tmp_path / "identity.safetensors"))
    assert r.returncode == 1 and b"cannot decode camera RAW" in r.stderr
    assert (tmp_path / "a_denoised.tif").exists() and not (tmp_path / "b_denoised.tif").exists()


def test_a_saved_raw_model_loads_with_its_guides(tmp_path):
    _identity_raw_model(tmp_path / "m.safetensors")
    model = load_model(tmp_path / "m.safetensors")
    assert model.config.channels == 4 and model.config.guides == 4


def test_the_raw_default_trainer_resumes_where_it_stopped_and_exports_a_raw_model(tmp_path):
    import json

    from denoise_cli.training import raw_default

    clean = tmp_path / "clean"
    clean.mkdir()
    rng = np.random.default_rng(0)
    from PIL import Image

    Image.fromarray(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(clean / "a.png")
    args = [str(clean), "--run", str(tmp_path / "run"), "--patch", "32", "--batch", "2", "--threads", "1"]
    raw_default.main(args + ["--time-budget", "1s"])
    first = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][-1]
    raw_default.main(args + ["--time-budget", "2s", "--export", str(tmp_path / "raw.safetensors")])
    last = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["step"] > first["step"] and last["elapsed"] > first["elapsed"] >= 1.0
    assert "SensorPrior" in json.loads((tmp_path / "run" / "config.json").read_text())["prior"]
    model = load_model(tmp_path / "raw.safetensors")
    assert model.config.channels == 4 and model.config.guides == 4


def test_without_a_raw_profile_or_raw_weights_raw_files_are_developed_first(tmp_path):
    (tmp_path / "shot.dng").write_bytes(dng_bytes(_scene(), "RGGB", 512, 16383))
    r = run_cli("denoise", str(tmp_path / "shot.dng"), env={"DENOISE_CLI_PROFILES": str(tmp_path / "profiles")})
    assert r.returncode == 0, r.stderr
    assert b"demosaiced to sRGB" in r.stderr and b"before demosaicking" not in r.stderr


def test_a_raw_model_given_as_weights_for_photos_is_one_usage_line(tmp_path):
    _identity_raw_model(tmp_path / "raw.safetensors")
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "p.png")
    r = run_cli("denoise", str(tmp_path / "p.png"), "--weights", str(tmp_path / "raw.safetensors"))
    assert r.returncode == 2 and b"is a RAW model" in r.stderr and b"--raw-weights" in r.stderr


def test_the_raw_default_is_embedded_verifies_and_reads_four_planes_and_four_guides():
    from denoise_cli.registry import weights as W

    reg = W.load_registry()
    entry = reg.get(reg.default_raw)
    assert entry.embedded and entry.channels == 4
    path = W.resolve(reg.default_raw)
    assert W.sha256_file(path) == entry.sha256
    config = load_model(path).config
    assert (config.channels, config.guides) == (4, 4)


def test_raw_domain_uses_the_raw_default(tmp_path):
    (tmp_path / "shot.dng").write_bytes(dng_bytes(_scene(), "GBRG", 512, 16383))
    r = run_cli("denoise", str(tmp_path / "shot.dng"), "--raw-domain", "--json",
                env={"DENOISE_CLI_PROFILES": str(tmp_path / "profiles")})
    assert r.returncode == 0, r.stderr
    assert b"GBRG Bayer planes, blind" in r.stderr
    import json

    assert json.loads(r.stdout)["weights_raw"] == "raw-bayer-small"


def test_a_raw_model_can_be_guided_by_the_noise_measured_from_the_file_itself(tmp_path, monkeypatch):
    from denoise_cli.api import load_raw_denoiser

    _identity_raw_model(tmp_path / "id.safetensors")
    model = load_raw_denoiser(str(tmp_path / "id.safetensors"), device="cpu", precision="fp32")
    seen = []
    monkeypatch.setattr(model, "planes", lambda planes, noise=None, on_tile=None: seen.append(noise) or planes)
    data = dng_bytes(_scene(), "RGGB", 512, 16383)
    notices: list[str] = []
    model.develop_denoised(data, notices=notices, estimate=True)
    assert isinstance(seen[-1], SensorNoise) and seen[-1].a[0] >= 0 and "measured from the file" in notices[-1]
    model.develop_denoised(data, notices=notices)
    assert seen[-1] is None and "blind" in notices[-1]
