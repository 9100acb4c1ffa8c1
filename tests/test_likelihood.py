import math

import torch

from denoise_cli.training.likelihood import bayes_fusion, constrained_nll, gaussian_nll, inv_det


def _px(v):
    return torch.tensor(v, dtype=torch.float64).view(1, -1, 1, 1)


def _cov(m):
    return torch.tensor(m, dtype=torch.float64).view(1, 1, 1, *torch.tensor(m).shape)


def _color_case() -> tuple[torch.Tensor, ...]:
    """A hand-checkable colour pixel: y, μ, and positive-definite 3×3 Σμ and Σn with cross-channel terms."""
    y = torch.tensor([0.6, 0.4, 0.5], dtype=torch.float64)
    mu = torch.tensor([0.5, 0.5, 0.45], dtype=torch.float64)
    s_mu = torch.tensor([[0.02, 0.005, 0.0], [0.005, 0.03, 0.002], [0.0, 0.002, 0.01]], dtype=torch.float64)
    s_n = torch.tensor([[0.05, 0.01, 0.004], [0.01, 0.04, 0.0], [0.004, 0.0, 0.06]], dtype=torch.float64)
    return y, mu, s_mu, s_n


def test_gray_nll_by_hand():
    y, mu, s_mu, s_n = 0.7, 0.5, 0.01, 0.04
    expected = 0.5 * ((y - mu) ** 2 / (s_mu + s_n) + math.log(s_n) + s_mu / s_n)
    got = constrained_nll(_px([y]), _px([mu]), _cov([[s_mu]]), _cov([[s_n]]))
    assert abs(got.item() - expected) < 1e-12


def test_color_nll_and_fusion_by_hand():
    y, mu, s_mu, s_n = _color_case()
    d = y - mu
    expected = 0.5 * (d @ torch.linalg.inv(s_mu + s_n) @ d + torch.logdet(s_n) + torch.trace(torch.linalg.inv(s_n) @ s_mu))
    got = constrained_nll(_px(y.tolist()), _px(mu.tolist()), _cov(s_mu.tolist()), _cov(s_n.tolist()))
    assert abs(got.item() - expected.item()) < 1e-10
    fused = bayes_fusion(_px(y.tolist()), _px(mu.tolist()), _cov(s_mu.tolist()), _cov(s_n.tolist()))
    ref = torch.linalg.solve(s_mu + s_n, s_mu @ y + s_n @ mu)
    assert torch.allclose(fused.view(-1), ref, atol=1e-12)


def test_exact_nll_by_hand_and_below_eq8():
    """The exact likelihood's log|Σμ+Σn| is at most eq. 8's log|Σn| + tr(Σn⁻¹Σμ), equal as Σμ → 0."""
    y, mu, s_mu, s_n = _color_case()
    d = y - mu
    expected = 0.5 * (d @ torch.linalg.inv(s_mu + s_n) @ d + torch.logdet(s_mu + s_n))
    args = (_px(y.tolist()), _px(mu.tolist()), _cov(s_mu.tolist()), _cov(s_n.tolist()))
    assert abs(gaussian_nll(*args).item() - expected.item()) < 1e-10
    assert gaussian_nll(*args) < constrained_nll(*args)
    tiny = (args[0], args[1], _cov((s_mu * 1e-6).tolist()), args[3])
    assert abs(gaussian_nll(*tiny).item() - constrained_nll(*tiny).item()) < 1e-6


def test_fusion_limits():
    y, mu = _px([0.9]), _px([0.1])
    # no noise: trust y; no prior uncertainty: trust μ
    assert torch.allclose(bayes_fusion(y, mu, _cov([[1.0]]), _cov([[1e-12]])), y)
    assert torch.allclose(bayes_fusion(y, mu, _cov([[1e-12]]), _cov([[1.0]])), mu)


def test_inverse_and_determinant_closed_form():
    a = torch.randn(50, 3, 3, dtype=torch.float64)
    a = a @ a.transpose(-1, -2) + 0.1 * torch.eye(3, dtype=torch.float64)
    inv, det = inv_det(a)
    assert torch.allclose(inv, torch.linalg.inv(a), atol=1e-9)
    assert torch.allclose(det, torch.linalg.det(a))
