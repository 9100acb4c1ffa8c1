import torch

from denoise_cli.training.pixel_shuffle import bayer_groups, pad_to_multiple, pd_down, pd_up


def test_pd_is_an_exact_inverse_and_orders_sub_images():
    x = torch.rand(2, 3, 16, 24)
    s = pd_down(x)
    assert s.shape == (32, 3, 4, 6)
    assert torch.equal(pd_up(s), x)
    for a in range(4):
        for b in range(4):
            assert torch.equal(s[a * 4 + b], x[0, :, a::4, b::4])
            assert torch.equal(s[16 + a * 4 + b], x[1, :, a::4, b::4])


def test_bayer_groups_follow_position_parity():
    g = bayer_groups(2)
    for k, grp in enumerate(g.tolist()):
        a, b = (k % 16) // 4, k % 4
        assert grp == 2 * (a % 2) + (b % 2)
    assert torch.bincount(g).tolist() == [8, 8, 8, 8]


def test_padding_to_multiple():
    x = torch.rand(1, 1, 10, 13)
    p, size = pad_to_multiple(x)
    assert p.shape[-2:] == (12, 16) and size == (10, 13)
    assert torch.equal(p[..., :10, :13], x)
