"""Local fusion: keeps the photo where the blind-spot estimate is off, trusts the estimate where it agrees with the
photo up to the noise, and reports the divergence SURE needs."""

import torch

from denoise_cli.training.local_fusion import local_fusion


def _scene(seed: int = 0, sigma: float = 0.05) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, 1, 1, generator=g).expand(1, 3, 64, 64).clone()  # flat colour
    x[..., 32:] += 0.3 * torch.rand(1, 3, 64, 32, generator=g)  # and a textured half
    y = x + sigma * torch.randn(x.shape, generator=g)
    return x, y, torch.full_like(x, sigma**2)


def test_a_right_estimate_is_trusted_and_a_wrong_one_is_not():
    x, y, var = _scene()
    right, _ = local_fusion(y, x, var)
    assert ((right - x) ** 2).mean() < 0.3 * ((y - x) ** 2).mean()
    wrong = x + 0.5  # far off everywhere: the photo is kept, not the estimate
    out, _ = local_fusion(y, wrong, var)
    assert ((out - x) ** 2).mean() < 1.2 * ((y - x) ** 2).mean()


def test_the_divergence_is_the_pixels_own_derivative():
    x, y, var = _scene(1)
    mu = x + 0.03 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))  # fixed: it never sees y
    out, div = local_fusion(y, mu, var)
    for c, i, j in ((0, 5, 5), (1, 40, 20), (2, 50, 60), (0, 0, 0)):
        eps = 1e-4
        bumped = y.clone()
        bumped[0, c, i, j] += eps
        numeric = (local_fusion(bumped, mu, var)[0][0, c, i, j] - out[0, c, i, j]) / eps
        assert abs(float(numeric) - float(div[0, c, i, j])) < 2e-2


def test_sure_with_that_divergence_tracks_the_true_error():
    x, y, var = _scene(3, sigma=0.04)
    mu = x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    out, div = local_fusion(y, mu, var)
    sure = ((out - y) ** 2 - var + 2 * var * div).mean()
    true = ((out - x) ** 2).mean()
    assert abs(float(sure) - float(true)) < 0.1 * float(true)
