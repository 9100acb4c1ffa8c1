import numpy as np

from denoise_cli import denoise_image


def test_denoise_image_keeps_dtype_and_shape(tiny_weights):
    rng = np.random.default_rng(0)
    for arr in (rng.integers(0, 255, (20, 24, 3)).astype(np.uint8),
                rng.integers(0, 65535, (20, 24)).astype(np.uint16),
                rng.random((20, 24, 3)).astype(np.float32)):
        out = denoise_image(arr, weights=tiny_weights, device="cpu")
        assert out.dtype == arr.dtype and out.shape == arr.shape


def test_default_model_reduces_noise(smooth_rgb):
    noisy = np.clip(smooth_rgb + np.random.default_rng(1).normal(0, 25 / 255, smooth_rgb.shape), 0, 1)
    out = denoise_image(noisy.astype(np.float32), device="cpu")
    assert np.mean((out - smooth_rgb) ** 2) < 0.5 * np.mean((noisy - smooth_rgb) ** 2)
    ens = denoise_image(noisy.astype(np.float32), device="cpu", ensemble=True)
    assert np.mean((ens - smooth_rgb) ** 2) < np.mean((out - smooth_rgb) ** 2)  # the 8-view mean is cleaner
