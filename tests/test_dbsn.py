import math

import pytest
import torch

from denoise_cli.models.dbsn import ARCHS, DBSN, DBSNConfig, build_dbsn, ring_mean
from denoise_cli.noise.cnnest import NoiseModel


@pytest.mark.parametrize("ring_skip", [True, False])
@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("channels", [1, 3])
def test_blind_spot_gradient_is_exactly_zero(arch, channels, ring_skip):
    torch.manual_seed(0)
    m = DBSN(DBSNConfig(channels, **ARCHS[arch], ring_skip=ring_skip))
    y = torch.rand(1, channels, 33, 33, requires_grad=True)
    mu, l_mu = m(y)
    for i, j in ((16, 16), (3, 30)):
        y.grad = None
        (mu[0, :, i, j].sum() + l_mu[0, i, j].sum()).backward(retain_graph=True)
        g = y.grad[0].abs().sum(0)
        assert g[i, j] == 0.0
        assert (g > 0).sum() > 200  # it does see a wide neighbourhood


@pytest.mark.parametrize("channels", [1, 3])
def test_holding_the_mean_keeps_outputs_and_lets_sigma_mu_train_only_its_output_layer(channels):
    torch.manual_seed(0)
    m = DBSN(DBSNConfig(channels, **ARCHS["small"]))
    y = torch.rand(2, channels, 20, 20)
    mu, l_mu = m(y)
    mu_h, l_mu_h = m(y, hold_mean=True)
    assert torch.allclose(mu, mu_h) and torch.allclose(l_mu, l_mu_h)
    l_mu_h.square().sum().backward()
    last = m.tail[-1]
    for name, p in m.named_parameters():
        if p is last.weight or p is last.bias:
            assert p.grad[:channels].abs().max() == 0  # μ's output rows untouched
            assert p.grad[channels:].abs().max() > 0
        else:
            assert p.grad is None or p.grad.abs().max() == 0, name


def test_ring_mean_averages_the_eight_neighbours_only():
    y = torch.zeros(1, 2, 5, 5)
    y[0, 0, 2, 2] = 8.0  # the centre never reaches itself
    y[0, 1, 1, 1] = 8.0
    r = ring_mean(y)
    assert r[0, 0, 2, 2] == 0 and r[0, 0, 1, 2] == 1.0 and r[0, 0, 0, 0] == 0
    assert r[0, 1, 2, 2] == 1.0 and r[0, 1, 1, 1] == 0
    assert torch.allclose(ring_mean(torch.full((1, 1, 4, 4), 0.3)), torch.full((1, 1, 4, 4), 0.3))  # edges too


def test_a_small_sigma_mu_start_is_flat_and_channel_independent_whatever_the_input():
    """"small": Σμ starts at softplus(−4) + 1e-3 on the diagonal and nothing else, until the likelihood trains it;
    "large" (the network's default; fit picks per mode) starts ~7× higher, with cross-channel terms from D-BSN's
    features."""
    torch.manual_seed(0)
    y = torch.rand(2, 3, 12, 12)
    _, l_small = DBSN(DBSNConfig(3, **ARCHS["small"], sigma_mu_start="small"))(y)
    start = torch.nn.functional.softplus(torch.tensor(-4.0)) + 1e-3
    assert torch.allclose(l_small, start * torch.eye(3).expand_as(l_small))
    _, l_large = DBSN(DBSNConfig(3, **ARCHS["small"]))(y)
    assert (l_large[..., 1, 0] != 0).any() and l_large[..., 0, 0].mean() > 5 * start


def test_the_ring_skip_is_on_by_default():
    assert build_dbsn(3).config.ring_skip is True


def test_noise_model_is_pixelwise_and_positive_definite():
    torch.manual_seed(1)
    n = NoiseModel(3, groups=4)
    y = torch.rand(4, 3, 5, 6)
    L = n(y, torch.tensor([0, 1, 2, 3]))
    cov = L @ L.transpose(-1, -2)
    assert cov.shape == (4, 5, 6, 3, 3)
    assert (torch.linalg.eigvalsh(cov) > 0).all()
    # pixel-wise: same value, same covariance anywhere
    flat = torch.full((1, 3, 4, 4), 0.3)
    Lf = n(flat, 0)
    assert torch.allclose(Lf[0, 0, 0], Lf[0, 3, 2])
    # starts at a small noise level (≈ 5/255)
    assert (n.sigma_curve(torch.tensor([0.5]), 0) < 8).all()


@pytest.mark.parametrize("diagonal", [False, True])
def test_noise_model_can_start_at_a_given_sigma(diagonal):
    n = NoiseModel(3, groups=2, diagonal=diagonal)
    n.init_sigma(25.0)
    for g in (0, 1):
        s = n.sigma_curve(torch.tensor([0.2, 0.8]), g)
        assert torch.allclose(s, torch.full_like(s, 25.0), rtol=0.05)


def test_diagonal_noise_model_has_no_cross_channel_terms():
    torch.manual_seed(0)
    n = NoiseModel(3, diagonal=True)
    assert n.nets[0][-1].out_channels == 3  # one parameter per channel instead of six
    L = n(torch.rand(2, 3, 4, 4))
    off = ~torch.eye(3, dtype=torch.bool)
    assert (L[..., off] == 0).all() and (torch.diagonal(L, dim1=-2, dim2=-1) > 0).all()


def test_group_scale_scales_each_groups_sigma_mu_rows_and_starts_at_one():
    from denoise_cli.models.cholesky import covariance
    from denoise_cli.models.dbsn import GroupScale

    L = torch.tril(torch.rand(2, 4, 4, 3, 3)) + torch.eye(3)
    groups = torch.tensor([0, 3])
    scale = GroupScale(4, 3)
    assert torch.equal(scale(L, groups), L)  # log-scale 0: Σμ as D-BSN gives it
    with torch.no_grad():
        scale.log_scale[3, 1] = math.log(2.0)
    s = covariance(scale(L, groups))
    base = covariance(L)
    assert torch.allclose(s[0], base[0])  # group 0 untouched
    d = torch.tensor([1.0, 2.0, 1.0])
    assert torch.allclose(s[1], d[:, None] * base[1] * d[None, :], atol=1e-5)  # group 3: D Σμ D
