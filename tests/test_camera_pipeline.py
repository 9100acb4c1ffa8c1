"""The camera-pipeline noise model (noise.pipeline), its prior, JPEG settings and the noise statistics."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoise_cli.errors import NoiseSpecError
from denoise_cli.noise.synthetic import add_noise, parse_spec
from denoise_cli.noise.jpeg_settings import ijg_table, jpeg_settings, quality_of
from denoise_cli.noise.pipeline import (CFA_CODES, DEMOSAIC, CameraPipeline, camera_noise, demosaic, finish, mosaic,
                                        render, to_sensor, develop)
from denoise_cli.noise.prior import DEFAULT_PRIOR
from denoise_cli.noise.statistics import NoiseStats, blind_stats, relative_errors


def _scene(n: int = 128) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n] / n
    return np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 + 0.3 * np.sin(6 * x)], -1)


@pytest.mark.parametrize("cfa", list(CFA_CODES))
@pytest.mark.parametrize("method", DEMOSAIC)
def test_each_bayer_layout_demosaics_a_colour_back_to_itself(cfa, method):
    colour = np.array([0.15, 0.5, 0.8])
    out = demosaic(mosaic(np.ones((16, 16, 3)) * colour, cfa), cfa, method)
    assert np.allclose(out[4:-4, 4:-4], colour, atol=1e-3)  # a swapped R/B would give 0.8, 0.5, 0.15


def test_developing_the_sensor_image_gives_the_scene_back():
    x = _scene()
    for p in (CameraPipeline(), CameraPipeline(saturation=0.9, contrast=0.4, wb=(2.4, 1, 1.3), demosaic="bilinear")):
        from denoise_cli.noise.pipeline import colour_matrix  # noqa: F401 (the matrix is what to_sensor inverts)

        back = develop(mosaic(to_sensor(x, p), p.cfa), p)
        assert np.abs(back - x)[8:-8, 8:-8].mean() < 0.01


def test_noise_grows_with_the_sensor_noise_and_is_zero_mean():
    x = np.full((128, 128, 3), 0.4)
    rng = np.random.default_rng(0)
    sigmas = [camera_noise(x, CameraPipeline(shot=(a,) * 3, read=(a / 100,) * 3), rng).std() for a in (1e-4, 1e-3, 1e-2)]
    assert sigmas[0] < sigmas[1] < sigmas[2]
    assert abs(camera_noise(x, CameraPipeline(), rng).mean()) < 0.002


def test_demosaicking_and_noise_reduction_correlate_neighbours_and_jpeg_420_the_channels():
    x = np.full((192, 192, 3), 0.4)
    plain = CameraPipeline(demosaic="bilinear")
    s = NoiseStats()
    s.add(camera_noise(x, plain, np.random.default_rng(1)), x)
    white = NoiseStats()
    white.add(np.random.default_rng(1).standard_normal(x.shape), x)
    assert abs(white.summary()["1"]) < 0.05 and abs(white.summary()["rg"]) < 0.05
    assert s.summary()["1"] > 0.3  # bilinear demosaicking spreads each site's noise to its neighbours
    blurred = NoiseStats()
    blurred.add(camera_noise(x, replace(plain, luma_blur=1.0, chroma_blur=1.0), np.random.default_rng(1)), x)
    assert blurred.summary()["2"] > s.summary()["2"] + 0.1
    rg = {}
    for quality in (None, 75):
        p = replace(plain, shot=(5e-3,) * 3, jpeg_quality=quality, subsampling="4:2:0")
        saved = NoiseStats()
        saved.add(render(x, p, np.random.default_rng(2)) - finish(x, p), x)
        rg[quality] = saved.summary()["rg"]
    assert rg[75] > rg[None] + 0.3  # 4:2:0 shares colour between channels; the sensor's channels are independent


def test_render_is_eight_bit_and_deterministic_per_generator():
    x = _scene(64)
    p = CameraPipeline(jpeg_quality=90)
    a, b = render(x, p, np.random.default_rng(3)), render(x, p, np.random.default_rng(3))
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert np.allclose(a * 255, np.round(a * 255), atol=1e-4)
    assert not np.array_equal(a, render(x, p, np.random.default_rng(4)))


def test_bad_settings_are_refused():
    with pytest.raises(NoiseSpecError):
        CameraPipeline(demosaic="magic")
    with pytest.raises(NoiseSpecError):
        CameraPipeline(jpeg_quality=0)
    with pytest.raises(NoiseSpecError):
        camera_noise(np.zeros((8, 8)), CameraPipeline(), np.random.default_rng(0))


def test_pipeline_round_trips_through_a_dict():
    p = DEFAULT_PRIOR.sample(np.random.default_rng(5))
    assert CameraPipeline.from_dict(p.to_dict()) == p


def test_the_prior_spans_quiet_and_noisy_cameras():
    rng = np.random.default_rng(6)
    cams = [DEFAULT_PRIOR.sample(rng) for _ in range(200)]
    shots = np.array([c.shot[1] for c in cams])
    assert shots.min() < 3e-4 and shots.max() > 5e-3
    assert {c.demosaic for c in cams} == set(DEMOSAIC) and {c.cfa for c in cams} == set(CFA_CODES)
    assert any(c.jpeg_quality is None for c in cams) and any(c.jpeg_quality for c in cams)
    assert DEFAULT_PRIOR.sample(rng, shot=0.002).shot[1] == pytest.approx(0.002, rel=0.5)


@pytest.mark.parametrize("quality", [50, 75, 92, 100])
@pytest.mark.parametrize("subsampling", [0, 2])
def test_jpeg_quality_and_subsampling_are_read_exactly(tmp_path: Path, quality, subsampling):
    path = tmp_path / "x.jpg"
    Image.fromarray((_scene(64) * 255).astype(np.uint8)).save(path, quality=quality, subsampling=subsampling)
    assert jpeg_settings(path) == (quality, {0: "4:4:4", 2: "4:2:0"}[subsampling])


def test_a_non_jpeg_has_no_jpeg_settings_and_a_foreign_table_its_nearest_quality(tmp_path: Path):
    path = tmp_path / "x.png"
    Image.fromarray((_scene(32) * 255).astype(np.uint8)).save(path)
    assert jpeg_settings(path) is None
    assert quality_of(ijg_table(80)) == (80, True)
    assert quality_of(ijg_table(80) + 1) == (quality_of(ijg_table(80) + 1)[0], False)


def test_pipeline_spec_for_synth():
    assert str(parse_spec("pipeline")) == "pipeline" and str(parse_spec("pipeline:0.002")) == "pipeline:0.002"
    x = _scene(64).astype(np.float32)
    a = add_noise(x, "pipeline", np.random.default_rng(0))
    assert a.shape == x.shape and 0.002 < np.abs(a - x).mean() < 0.2
    with pytest.raises(NoiseSpecError):
        add_noise(x[..., :1], "pipeline", np.random.default_rng(0))


def test_relative_errors_and_blind_stats_see_more_noise_when_there_is_more():
    x = np.full((64, 64, 3), 0.5)
    t, m = NoiseStats(), NoiseStats()
    rng = np.random.default_rng(7)
    t.add(rng.standard_normal(x.shape) * 0.02, x)
    m.add(rng.standard_normal(x.shape) * 0.022, x)
    err = relative_errors(t.summary(), m.summary())
    assert 0.05 < err["sigma_max"] < 0.2
    scene = _scene(128)
    quiet = blind_stats([scene + rng.standard_normal(scene.shape) * 0.01])
    loud = blind_stats([scene + rng.standard_normal(scene.shape) * 0.03])
    assert np.nanmean(loud["sigma"]) > 2 * np.nanmean(quiet["sigma"])


def test_calibration_finds_a_known_cameras_noise_level_from_its_photos():
    from denoise_cli.noise.calibrate import calibrate

    rng = np.random.default_rng(8)
    scenes = [_scene(96) * 0.8 + 0.1 * k for k in range(3)]
    camera = CameraPipeline(shot=(2e-3,) * 3, read=(2e-5,) * 3, jpeg_quality=90)
    photos = [render(x, camera, rng) for x in scenes]
    found, info = calibrate(photos, scenes, jpeg=(90, "4:2:0"), sweeps=3)
    truth, model = NoiseStats(), NoiseStats()
    for i, x in enumerate(scenes):
        truth.add(render(x, camera, np.random.default_rng(i)) - finish(x, camera), x)
        model.add(render(x, found, np.random.default_rng(i)) - finish(x, found), x)
    assert relative_errors(truth.summary(), model.summary())["sigma_mean"] < 0.3
    assert found.jpeg_quality == 90 and info["evaluations"] > 10


def test_the_noise_is_zero_mean_where_the_tone_curve_would_shift_the_average_photo():
    x = np.full((192, 192, 3), 0.15)
    p = CameraPipeline(shot=(8e-3,) * 3, read=(1e-4,) * 3, demosaic="bilinear")
    bias = camera_noise(x, p, np.random.default_rng(9)).mean() * 255
    from denoise_cli.noise.pipeline import encode, mosaic, to_linear_rgb, to_sensor

    raw = mosaic(to_sensor(x, p), p.cfa)
    rng = np.random.default_rng(9)
    noisy = raw + rng.standard_normal(raw.shape) * np.sqrt(raw * 8e-3 + 1e-4)
    naive = (encode(to_linear_rgb(noisy, p), p) - encode(to_linear_rgb(raw, p), p)).mean() * 255
    assert naive < -1.0 and abs(bias) < abs(naive) / 5  # Jensen's shift through the concave curve, and most of it removed


def test_photos_too_small_to_measure_get_no_calibration_and_a_fit_of_them_ends_without_one(tmp_path):
    from conftest import run_cli
    from denoise_cli.io import Photo, write_image
    from denoise_cli.noise.calibrate import calibrate_photos, crops_of, load_pipeline, save_pipeline

    tiny = [np.random.default_rng(i).random((30, 30, 3)).astype(np.float32) for i in range(2)]
    assert calibrate_photos(tiny, jpeg=None) is None
    assert [c.shape for c in crops_of([np.zeros((300, 500, 4))] * 3, n=2)] == [(256, 256, 3)] * 2
    save_pipeline(CameraPipeline(jpeg_quality=80), tmp_path / "p.json")
    assert load_pipeline(tmp_path / "p.json") == CameraPipeline(jpeg_quality=80)
    for i, im in enumerate(tiny):
        write_image(Photo(im), tmp_path / "in" / f"t{i}.png")
    r = run_cli("fit", str(tmp_path / "in"), "--run", str(tmp_path / "run"), "--iterations", "2", "--patch", "8",
                "--batch", "4")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "run" / "camera_pipeline.json").exists()


@pytest.mark.parametrize("sigma", [3, 25])
def test_stand_in_scenes_take_most_of_the_noise_out_at_low_and_high_iso(sigma):
    from denoise_cli.noise.calibrate import stand_in_scene
    from denoise_cli.training.fit import stand_in_denoiser

    x = _scene(128).astype(np.float32)
    y = np.clip(x + np.random.default_rng(3).standard_normal(x.shape).astype(np.float32) * sigma / 255, 0, 1)
    left = (stand_in_scene(y, stand_in_denoiser()) - x)[8:-8, 8:-8].std() * 255
    assert left < max(0.3 * sigma, 2.0)  # non-local means alone at one strength left 19.6 of σ 25 in
    assert (stand_in_scene(y) - x)[8:-8, 8:-8].std() * 255 < sigma  # without a denoiser: NLM alone
