import numpy as np
import pytest

from denoise_cli.noise.synthetic import NoiseSpecError, add_noise, camera_render, image_rng, parse_spec, quantize


def _flat(v: float = 0.5, n: int = 512, c: int = 3) -> np.ndarray:
    return np.full((n, n, c), v, np.float64)


def test_awgn_sigma_within_two_percent():
    x = _flat()
    n = (add_noise(x, "awgn:25", np.random.default_rng(0)) - x) * 255
    assert abs(n.std() - 25) < 0.5


def test_hg_variance_follows_alpha2_x_plus_delta2():
    for v in (0.1, 0.5, 0.9):
        x = _flat(v, 256)
        n = (add_noise(x, "hg:40,10", np.random.default_rng(1)) - x) * 255
        assert abs(n.var() / (40**2 * v + 10**2) - 1) < 0.03


def test_mg_covariance_is_75sq_U_Lambda_Ut():
    x = _flat(0.5, 512)
    rng = np.random.default_rng(2)
    n = ((add_noise(x, "mg:75", rng) - x) * 255).reshape(-1, 3)
    emp = np.cov(n.T)
    # Same draw of U, Λ as add_noise made: it is the first thing taken from the generator.
    from denoise_cli.noise.synthetic import mg_factor
    factor = mg_factor(75, 3, np.random.default_rng(2)) * 255
    assert np.allclose(emp, factor @ factor.T, rtol=0.05, atol=30)


def test_same_seed_same_noise_and_names_differ():
    x = _flat(0.3, 64)
    a = add_noise(x, "camera:1600", image_rng(7, "a.png"))
    b = add_noise(x, "camera:1600", image_rng(7, "a.png"))
    c = add_noise(x, "camera:1600", image_rng(7, "b.png"))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def _neighbour_corr(n: np.ndarray) -> float:
    return float(np.corrcoef(n[:, :-1, 1].ravel(), n[:, 1:, 1].ravel())[0, 1])


def test_camera_noise_is_spatially_correlated_awgn_is_not():
    x = _flat(0.4, 256)
    cam = add_noise(x, "camera:3200", np.random.default_rng(3)) - x
    awgn = add_noise(x, "awgn:25", np.random.default_rng(3)) - x
    assert _neighbour_corr(cam) > 0.2
    assert abs(_neighbour_corr(awgn)) < 0.02


def test_camera_render_without_rng_is_the_noise_free_pipeline():
    """A flat image renders back to itself (its mosaic demosaics to the same flat colour), and the noisy
    rendering minus the noise-free one is the camera noise alone: zero-mean, and largest in the channel
    sampled at the site (red at RGGB's R site, interpolated from 4 neighbours at the B site)."""
    x = _flat(0.4, 128)
    x[..., 0], x[..., 2] = 0.5, 0.3
    assert np.abs(camera_render(x, 1600) - x).max() < 1e-3
    tex = np.random.default_rng(5).uniform(0.2, 0.8, (128, 128, 3))
    noise = camera_render(tex, 1600, np.random.default_rng(6)) - camera_render(tex, 1600)
    assert abs(noise.mean()) < 0.1 * noise.std()
    red = noise[8:-8, 8:-8, 0]
    assert red[0::2, 0::2].std() > 1.5 * red[1::2, 1::2].std()


@pytest.mark.parametrize("bad", ["gauss:25", "awgn", "awgn:x", "hg:40", "awgn:50-10", "mg:-1"])
def test_bad_specs_are_refused(bad):
    with pytest.raises(NoiseSpecError):
        parse_spec(bad)


def test_spec_roundtrips_and_blind_range():
    assert str(parse_spec("hg:40,10")) == "hg:40,10"
    assert str(parse_spec("awgn:0-50")) == "awgn:0-50"
    x = _flat(0.5, 128)
    s = ((add_noise(x, "awgn:0-50", np.random.default_rng(4)) - x) * 255).std()
    assert 0 <= s <= 51


def test_quantize_clips_and_rounds():
    q = quantize(np.array([-0.2, 0.5, 1.3]))
    assert np.allclose(q, [0.0, 128 / 255, 1.0])  # 127.5 rounds to 128
