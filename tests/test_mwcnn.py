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


def test_the_networks_ends_stay_fp32_under_autocast():
    """The first and last convs see and make the photo's own values: bf16 would round them to half an 8-bit level."""
    model = build_mwcnn(3).eval()
    dtypes = {}
    for name, layer in (("first", model.enc1[0]), ("inner", model.enc2[0]), ("last", model.dec1[-1])):
        layer.register_forward_hook(lambda _m, _i, out, name=name: dtypes.__setitem__(name, out.dtype))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(1, 3, 32, 32))
    assert dtypes == {"first": torch.float32, "inner": torch.bfloat16, "last": torch.float32}
    assert out.dtype == torch.float32
