"""The spatially correlated noise model: its filter reproduces a covariance, it draws what it says, and it is
estimated back from noisy images — with the correction for a denoiser that leaves part of the noise in."""

import cv2
import numpy as np
import torch

from denoise_cli.noise.correlated import (CorrelatedNoise, kernel_covariance, kernel_from_covariance,
                                                 load_noise, report_section, save_noise)
from denoise_cli.noise.estimate import NoiseFitConfig, calibrated_noise, estimate_noise


def _kernel(seed: int = 0, size: int = 5) -> np.ndarray:
    k = np.random.default_rng(seed).normal(size=(3, 3, size, size))
    k[:, :, :, :2] *= 0.3  # not symmetric: cross-channel terms differ with the sign of the lag
    return k / np.sqrt((k**2).sum(axis=(1, 2, 3)))[:, None, None, None]


def test_the_filter_from_a_covariance_reproduces_it_cross_channel_terms_included():
    target = kernel_covariance(_kernel(), 4)
    rebuilt = kernel_covariance(kernel_from_covariance(target, 9), 4)
    assert np.abs(rebuilt - target).max() < 0.02
    assert abs(rebuilt[0, 1, 4, 5] - target[0, 1, 4, 5]) < 0.01 and target[0, 1, 4, 5] != target[1, 0, 4, 5]


def test_a_draw_has_the_table_sigma_per_intensity_and_the_filters_correlation():
    sigma = torch.tensor([[[0.01, 0.03], [0.02, 0.02], [0.04, 0.01]]])  # 1 site, 3 channels, knots at 0 and 1
    model = CorrelatedNoise(sigma, torch.from_numpy(_kernel()))
    x = torch.full((2, 3, 128, 128), 0.25)
    n = model.sample(x, generator=torch.Generator().manual_seed(0))
    want = sigma[0, :, 0] * 0.75 + sigma[0, :, 1] * 0.25
    assert torch.allclose(n.std(dim=(0, 2, 3)), want, rtol=0.05)
    h = (n[..., :, :-1] * n[..., :, 1:]).mean(dim=(0, 2, 3)) / n.var(dim=(0, 2, 3))
    assert torch.allclose(h, torch.tensor(model.correlations(1)["horizontal"])[:, 1].float(), atol=0.05)


def _scene(seed: int) -> np.ndarray:
    """A piecewise-smooth colour image: flat patches with soft edges."""
    rng = np.random.default_rng(seed)
    img = np.zeros((192, 192, 3), np.float32)
    for _ in range(12):
        y, x, r = rng.integers(0, 192, 2).tolist() + [int(rng.integers(20, 60))]
        cv2.circle(img, (x, y), r, rng.uniform(0.2, 0.8, 3).tolist(), -1)
    return cv2.GaussianBlur(img + 0.3, (0, 0), 2).clip(0, 1)


def test_estimated_from_noisy_images_and_their_clean_content_it_reads_the_noise_back(tmp_path):
    truth = CorrelatedNoise(torch.full((1, 3, 2), 0.02), torch.from_numpy(_kernel(1)))
    g = torch.Generator().manual_seed(0)
    pairs = []
    for i in range(4):
        x = _scene(i)
        n = truth.sample(torch.from_numpy(x.transpose(2, 0, 1))[None], generator=g)[0].numpy().transpose(1, 2, 0)
        pairs.append((x + n, x))
    got = estimate_noise(pairs, 3, NoiseFitConfig(flat_fraction=1.0, lags=4, groups=1))
    assert np.allclose(got.sigma[0, :, 4:13].numpy(), 0.02, rtol=0.1)  # knots where the scenes have pixels
    want, seen = truth.correlations(2), got.correlations(2)
    assert np.allclose(seen["horizontal"], want["horizontal"], atol=0.05)
    assert np.allclose(seen["channels"], want["channels"], atol=0.05)
    save_noise(got, tmp_path / "n.safetensors")
    assert torch.equal(load_noise(tmp_path / "n.safetensors").kernel, got.kernel)
    assert set(report_section(got)) == {"levels", "sigma", "correlations"}


def _smooth_kernel() -> np.ndarray:
    """Grainy noise: a 7×7 Gaussian blob per channel, channels mixed (neighbours correlate strongly)."""
    g = cv2.getGaussianKernel(7, 1.2) @ cv2.getGaussianKernel(7, 1.2).T
    mix = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.5], [0.2, 0.5, 1.0]])
    k = mix[:, :, None, None] * g[None, None]
    return k / np.sqrt((k**2).sum(axis=(1, 2, 3)))[:, None, None, None]


def test_the_calibration_undoes_what_a_denoiser_leaves_of_the_noise():
    """A 'denoiser' that blurs (it keeps the low frequencies of whatever noise it is given): y − x̂ reads grainy noise
    too weak and too fine; calibrating with the same denoiser on known noise brings level and correlation closer."""
    truth = CorrelatedNoise(torch.full((1, 3, 2), 0.03), torch.from_numpy(_smooth_kernel()))
    g = torch.Generator().manual_seed(1)

    def denoise(y: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(y.astype(np.float32), (0, 0), 1.5)

    pairs = []
    for i in range(4):
        x = _scene(10 + i)
        y = x + truth.sample(torch.from_numpy(x.transpose(2, 0, 1))[None], generator=g)[0].numpy().transpose(1, 2, 0)
        pairs.append((y, denoise(y)))
    cfg = NoiseFitConfig(flat_fraction=0.6, lags=5, groups=1)
    raw = estimate_noise(pairs, 3, cfg)
    fixed = calibrated_noise(pairs, 3, denoise, cfg, rounds=3, probes=4)
    true_h = truth.correlations(1)["horizontal"][1][1]
    raw_h, fixed_h = raw.correlations(1)["horizontal"][1][1], fixed.correlations(1)["horizontal"][1][1]
    assert raw.sigma.mean() < 0.8 * 0.03 and raw_h < true_h - 0.1  # the residual alone: too weak, too fine…
    # the calibration takes back a good part of the error (not all: the residual of a blur carries no information at
    # the lowest frequencies, and the correction per frequency is bounded, MAX_GAIN)
    assert abs(fixed.sigma.mean() - 0.03) < 0.7 * abs(raw.sigma.mean() - 0.03)
    assert abs(fixed_h - true_h) < 0.7 * abs(raw_h - true_h)
