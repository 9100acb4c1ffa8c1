import numpy as np
import pytest

from denoise_cli.evaluation.metrics import estimate_sigma, psnr, ssim

skm = pytest.importorskip("skimage.metrics")


@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_ssim_match_skimage(channels):
    rng = np.random.default_rng(0)
    a = rng.random((40, 50, channels)) * 255
    b = np.clip(a + rng.normal(0, 15, a.shape), 0, 255)
    assert psnr(a, b) == pytest.approx(skm.peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)
    ref = skm.structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, channel_axis=2)
    assert ssim(a if channels == 3 else a[..., 0], b if channels == 3 else b[..., 0]) == pytest.approx(ref, abs=1e-6)


def test_psnr_known_value():
    a = np.zeros((10, 10))
    assert psnr(a, a + 255 / 100) == pytest.approx(40.0)
    assert psnr(a, a) == float("inf")


def test_sigma_estimate():
    x = 0.5 + np.random.default_rng(1).normal(0, 20 / 255, (256, 256))
    assert estimate_sigma(x) == pytest.approx(20, rel=0.05)
