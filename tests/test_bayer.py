"""RAW sensor data as Bayer planes (io.bayer), synthetic DNGs (io.dng) and the Anscombe transform (noise.anscombe)."""


import numpy as np
import pytest

from denoise_cli.errors import ImageError
from denoise_cli.io.bayer import BAYER_LAYOUTS, develop, open_raw, put_planes, read_planes
from denoise_cli.io.dng import dng_bytes
from denoise_cli.noise import anscombe


def _mosaic(h: int = 64, w: int = 96, black: int = 512, white: int = 16383, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(black, white, (h, w)).astype(np.uint16)


@pytest.mark.parametrize("cfa", BAYER_LAYOUTS)
def test_planes_follow_the_layout_and_scale_black_to_0_and_white_to_1(cfa):
    m = _mosaic()
    with open_raw(dng_bytes(m, cfa, black=512, white=16383)) as raw:
        frame = read_planes(raw)
    assert frame.cfa == cfa and frame.planes.shape == (32, 48, 4)
    expected = (m[0::2, 1::2].astype(np.float32) - 512) / (16383 - 512)  # the colour at (0, 1) of each cell
    assert np.allclose(frame.planes[..., 1], expected, atol=1e-6)
    assert frame.planes.min() >= 0 and frame.planes.max() <= 1


def test_planes_written_back_are_what_develops():
    m = _mosaic(seed=1)
    with open_raw(dng_bytes(m, "RGGB", black=512, white=16383)) as raw:
        before = develop(raw).astype(np.float64)
    with open_raw(dng_bytes(m, "RGGB", black=512, white=16383)) as raw:
        frame = read_planes(raw)
        put_planes(raw, frame)  # unchanged planes: the same buffer
        assert np.array_equal(np.asarray(raw.raw_image_visible), m)
        frame.planes[:] = 0.5  # a flat grey sensor develops flat
        put_planes(raw, frame)
        flat = develop(raw).astype(np.float64)
    assert flat[4:-4, 4:-4].std() < 0.01 * flat.mean() and before.std() > 10 * flat[4:-4, 4:-4].std()


def test_corrupt_raw_is_one_image_error():
    with pytest.raises(ImageError, match="cannot decode camera RAW"):
        with open_raw(b"II*\0" + b"\0" * 64):
            pass


def test_the_anscombe_transform_makes_poisson_gaussian_noise_unit_variance_and_inverts_without_bias():
    rng = np.random.default_rng(2)
    a, b = 2e-3, 4e-6
    for x in (0.02, 0.1, 0.5):
        clean = np.full(200_000, x)
        noisy = clean + rng.standard_normal(clean.shape) * np.sqrt(a * clean + b)
        d = anscombe.forward(noisy, a, b)
        assert abs(d.std() - 1) < 0.05  # Gaussian draws, not Poisson counts: the low end is a little over 1
        assert abs(anscombe.inverse(np.full(1, d.mean()), a, b)[0] / x - 1) < 0.02


@pytest.mark.parametrize("a,b", [(1e-3, 2e-5), (4e-3, 2e-4), (1.2e-2, 1e-3)])
def test_sensor_noise_is_read_from_the_noisy_planes_alone(a, b):
    from denoise_cli.noise.levels import NoiseLevels, poisson_gaussian

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:256, 0:256] / 256
    clean = np.stack([0.05 + 0.8 * x, 0.1 + 0.7 * y, 0.3 + 0.4 * x * y, 0.6 * (x + y) / 2], -1)  # four smooth planes
    noisy = clean + rng.standard_normal(clean.shape) * np.sqrt(a * clean + b)
    fa, fb = poisson_gaussian(NoiseLevels.estimate([noisy]))
    assert abs(fa / a - 1) < 0.15 and abs(fb - b) < 0.3 * b + 0.05 * a
