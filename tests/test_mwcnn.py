import pytest
import torch

from denoise_cli.models.mwcnn import ARCHS, build_mwcnn, dwt, iwt


def test_haar_transform_is_exact_inverse():
    x = torch.rand(2, 3, 16, 24)
    y = dwt(x)
    assert y.shape == (2, 12, 8, 12)
    assert torch.allclose(iwt(y), x, atol=1e-6)


def test_haar_is_orthonormal():
    x = torch.rand(1, 1, 8, 8)
    assert torch.isclose((dwt(x) ** 2).sum(), (x**2).sum(), rtol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(17, 30), (64, 64), (9, 8)])
def test_any_size_keeps_shape(channels, size):
    m = build_mwcnn(channels).eval()
    with torch.no_grad():
        y = m(torch.rand(1, channels, *size))
    assert y.shape == (1, channels, *size)


def test_residual_output_starts_near_identity_for_zero_last_layer():
    m = build_mwcnn(3).eval()
    torch.nn.init.zeros_(m.dec1[-1].weight)
    torch.nn.init.zeros_(m.dec1[-1].bias)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m(x), x, atol=1e-6)


def test_full_arch_matches_authors_widths():
    assert ARCHS["full"]["widths"] == (160, 256, 256)
    n = sum(p.numel() for p in build_mwcnn(3, "full").parameters())
    assert 10e6 < n < 20e6
