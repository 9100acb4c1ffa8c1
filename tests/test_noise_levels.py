"""The noise level function: recovers signal-dependent noise from noisy images alone, and turns it into the per-pixel
covariance the self-score takes its risk under."""

import numpy as np
import torch

from denoise_cli.noise.levels import NoiseLevels


def _scene(h: int = 192, w: int = 256) -> np.ndarray:
    """A smooth scene that spans the brightness range, with a few edges."""
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    img = 0.05 + 0.9 * xx + 0.03 * np.sin(9 * yy)
    img[h // 3 : h // 3 + 4] = 0.2  # an edge the robust rule should shrug off
    return np.repeat(img[..., None], 2, axis=2)


def test_signal_dependent_noise_is_recovered_per_brightness():
    rng = np.random.default_rng(0)
    alpha, delta = 40 / 255, 10 / 255  # variance α²x + δ², as the hg noise of noise.synthetic
    clean = [_scene() for _ in range(4)]
    noisy = [(x + rng.standard_normal(x.shape) * np.sqrt(alpha**2 * x + delta**2)).astype(np.float32) for x in clean]
    levels = NoiseLevels.estimate(noisy)
    for c in range(2):
        for b in (0.2, 0.5, 0.8):
            truth = np.sqrt(alpha**2 * b + delta**2)
            assert abs(levels.sigma_at(np.array(b), c) - truth) < 0.1 * truth
    # a photo-wide σ would be off by a third at the ends of the range; the function is not flat
    assert levels.sigma_at(np.array(0.8), 0) > 1.6 * levels.sigma_at(np.array(0.1), 0)


def test_covariance_is_diagonal_and_follows_brightness():
    levels = NoiseLevels(centres=np.array([[0.0, 1.0]]), sigmas=np.array([[0.01, 0.05]]))
    y = torch.cat([torch.full((1, 1, 8, 8), 0.0), torch.full((1, 1, 8, 8), 1.0)], dim=-1)
    cov = levels.covariance(y)
    assert cov.shape == (1, 8, 16, 1, 1)
    assert torch.allclose(cov[0, :, 0, 0, 0], torch.tensor(0.01**2)) and torch.allclose(cov[0, :, -1, 0, 0],
                                                                                     torch.tensor(0.05**2))


def test_many_photos_are_read_in_bounded_memory(monkeypatch):
    from denoise_cli.noise import levels as noise_levels

    monkeypatch.setattr(noise_levels, "MAX_BLOCKS", 4000)  # 12288 blocks: every 4th row
    rng = np.random.default_rng(1)
    noisy = [(0.5 + 0.02 * rng.standard_normal((128, 128, 1))).astype(np.float32) for _ in range(3)]
    assert abs(NoiseLevels.estimate(noisy).sigma_at(np.array(0.5), 0) - 0.02) < 0.004
