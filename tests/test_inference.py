import numpy as np
import pytest

from conftest import tiny_model
from denoise_cli.inference import Denoiser, DeviceError, pick_device
from denoise_cli.models.mwcnn import build_mwcnn


@pytest.mark.parametrize("tile,overlap", [(64, 64), (96, 32), (128, 96)])
def test_tiled_matches_untiled(tile, overlap):
    import torch

    torch.manual_seed(0)
    model = build_mwcnn(3)
    x = np.random.default_rng(0).random((150, 230, 3)).astype(np.float32)
    whole = Denoiser(model, tile=0)(x)
    tiled = Denoiser(model, tile=tile, overlap=overlap)(x)
    assert np.abs(whole - tiled).max() < 1e-3


def test_gray_image_with_color_model_and_reverse():
    notes: list[str] = []
    gray = np.random.default_rng(0).random((20, 24, 1)).astype(np.float32)
    out = Denoiser(tiny_model(3))(gray, notes)
    assert out.shape == gray.shape and "gray image" in notes[0]
    notes.clear()
    color = np.random.default_rng(0).random((20, 24, 3)).astype(np.float32)
    out = Denoiser(tiny_model(1))(color, notes)
    assert out.shape == color.shape and "channel by channel" in notes[0]


def test_device_and_precision_errors():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(DeviceError):
        pick_device("tpu")
    with pytest.raises(DeviceError, match="GPU"):
        Denoiser(tiny_model(), precision="fp16")


def test_gray_model_is_used_for_gray_images_when_given():
    notes: list[str] = []
    gray = np.random.default_rng(0).random((20, 24, 1)).astype(np.float32)
    d = Denoiser(tiny_model(3), gray_model=tiny_model(1, seed=3))
    out = d(gray, notes)
    assert out.shape == gray.shape and not notes
    assert np.allclose(out, Denoiser(tiny_model(1, seed=3))(gray))
