"""The folded MWCNN computes the plain one's function: same outputs in fp32 and under bf16 autocast, any size."""

import pytest
import torch

from denoise_cli.models.mwcnn import build_mwcnn
from denoise_cli.models.mwcnn_folded import FoldedMWCNN, fold_wavelets


@pytest.mark.parametrize("channels,arch", [(1, "small"), (3, "small")])
@pytest.mark.parametrize("size", [(32, 48), (37, 29)])  # a multiple of 8, and one padded inside
def test_same_function_as_the_plain_network(channels, arch, size):
    torch.manual_seed(0)
    model = build_mwcnn(channels, arch).eval()
    for p in model.parameters():  # trained-looking weights: biases and mixed signs everywhere
        p.data.normal_(0, 0.05)
    x = torch.rand(2, channels, *size)
    folded = fold_wavelets(model)
    assert isinstance(folded, FoldedMWCNN)
    with torch.inference_mode():
        plain, fast = model(x), folded(x)
        assert fast.shape == plain.shape
        assert (fast - plain).abs().max() < 1e-5
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert (folded(x).float() - model(x).float()).abs().max() < 0.02


def test_other_modules_pass_through():
    conv = torch.nn.Conv2d(1, 1, 3)
    assert fold_wavelets(conv) is conv
