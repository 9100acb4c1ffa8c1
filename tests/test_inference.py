import numpy as np
import pytest

from conftest import tiny_model
import torch

from denoise_cli.errors import ConfigError, DeviceError
from denoise_cli.inference.denoiser import Denoiser
from denoise_cli.inference.devices import AUTO_TILE, DEFAULT_OVERLAP, activation_bytes_per_pixel, auto_tile, pick_device
from denoise_cli.inference.views import DIHEDRAL, dihedral, undo_dihedral
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


def test_ensemble_is_the_mean_over_the_eight_turned_and_mirrored_views():
    x = np.random.default_rng(0).random((21, 34, 3)).astype(np.float32)  # not square: turns swap H and W
    views = [dihedral(x, k, flip) for k, flip in DIHEDRAL]
    assert len({v.tobytes() for v in views}) == 8
    assert all(np.array_equal(undo_dihedral(v, k, flip), x) for v, (k, flip) in zip(views, DIHEDRAL))
    single = Denoiser(tiny_model(3), tile=0)
    want = np.mean([undo_dihedral(single(np.ascontiguousarray(v)), k, flip) for v, (k, flip) in zip(views, DIHEDRAL)],
                   axis=0)
    got = Denoiser(tiny_model(3), tile=0, ensemble=True)(x)
    assert got.shape == x.shape and np.abs(got - want).max() < 1e-6
    assert np.abs(got - single(x)).max() > 1e-3  # a network is not equivariant: the views differ


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


def test_auto_tile_whole_images_on_a_gpu_while_they_fit():
    big = 4096
    assert auto_tile(big, big, "cpu") == AUTO_TILE and auto_tile(512, 512, "cpu") is None  # CPU: bounded RSS
    assert auto_tile(big, big, "cuda", free_bytes=80 * 2**30, bytes_per_pixel=256) is None
    side = auto_tile(big, big, "cuda", free_bytes=2 * 2**30, bytes_per_pixel=256)
    assert AUTO_TILE <= side < big and side % 8 == 0
    assert (side + 2 * DEFAULT_OVERLAP) ** 2 * 256 <= 2**30  # the tile with its context fits the share
    assert auto_tile(big, big, "cuda", free_bytes=2**20, bytes_per_pixel=256) == AUTO_TILE  # never smaller


def test_out_of_memory_on_an_automatic_whole_image_falls_back_to_tiles(monkeypatch):
    den = Denoiser(tiny_model(3), overlap=16)
    x = np.random.default_rng(0).random((80, 72, 3)).astype(np.float32)
    whole = den(x)
    forward = Denoiser._forward

    def short_of_memory(self, pixels, model=None):
        if pixels.shape[0] * pixels.shape[1] >= 80 * 72:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return forward(self, pixels, model)

    monkeypatch.setattr(Denoiser, "_forward", short_of_memory)
    monkeypatch.setattr("denoise_cli.inference.denoiser.AUTO_TILE", 32)  # the fallback tile size
    np.testing.assert_allclose(den(x), whole, atol=1e-2)  # tiles with 16 px of context: close, not equal
    with pytest.raises(torch.cuda.OutOfMemoryError):  # whole images were asked for: no silent change
        Denoiser(tiny_model(3), tile=0)(x)


def test_activation_estimate_covers_the_measured_peaks():
    # peaks measured on an H200 (benchmarks/results/tiling-h200*.md): 204 B/px fp32, 108 fp16 for the small model
    small = build_mwcnn(3, "small")
    assert 204 <= activation_bytes_per_pixel(small, "fp32") <= 1.5 * 204
    assert 108 <= activation_bytes_per_pixel(small, "fp16") <= 1.5 * 108
    assert activation_bytes_per_pixel(build_mwcnn(3, "full"), "fp32") >= 1050  # measured on the CPU


def test_strength_removes_that_share_of_the_estimated_noise():
    x = np.random.default_rng(1).random((24, 40, 3)).astype(np.float32)
    full = Denoiser(tiny_model(3), tile=0)(x)
    half = Denoiser(tiny_model(3), tile=0, strength=0.5)(x)
    none = Denoiser(tiny_model(3), tile=0, strength=0.0)(x)
    assert np.abs(half - (x - 0.5 * (x - full))).max() < 1e-6
    assert np.array_equal(none, x)
    with pytest.raises(ConfigError):  # a DenoiseError, as every error the library raises
        Denoiser(tiny_model(3), strength=1.5)


def test_output_that_is_not_finite_is_an_error():
    from denoise_cli.errors import ModelOutputError

    model = tiny_model(3)
    with torch.no_grad():
        model.enc1[0].bias.fill_(float("inf"))
    with pytest.raises(ModelOutputError):
        Denoiser(model, tile=0)(np.zeros((16, 16, 3), np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_pixels_stream_into_the_same_type_as_float_pixels_would(dtype):
    """The tiled engine writes finished rows straight into the photo's own integer type: the result is the float
    path's result, rounded."""
    top = np.iinfo(dtype).max
    ints = np.random.default_rng(3).integers(0, top + 1, (150, 130, 3)).astype(dtype)
    den = Denoiser(tiny_model(3), tile=48, overlap=16, strength=0.8)
    got = den.denoise(ints)
    want = np.round(np.clip(den(ints.astype(np.float32) / top), 0, 1) * top).astype(dtype)
    assert got.dtype == dtype and np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_progress_counts_every_tile():
    calls = []
    Denoiser(tiny_model(3), tile=32, overlap=8).denoise(np.zeros((70, 100, 3), np.float32),
                                                        on_tile=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (12, 12) and len(calls) == 12


def test_auto_precision_is_bf16_only_on_cpus_with_bf16_units(monkeypatch):
    import denoise_cli.inference.denoiser as denoiser_module
    import denoise_cli.inference.devices as devices

    for has, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(devices, "cpu_has_bf16", lambda: has)
        monkeypatch.setattr(denoiser_module, "cpu_has_bf16", lambda: has)
        assert Denoiser(tiny_model(), precision="auto").precision == expected
        assert devices.resolve_precision("auto", torch.device("cuda")) == "fp32"
        assert devices.resolve_precision("fp16", torch.device("cpu")) == "fp16"


def test_the_cli_tiles_with_the_library_default_context():
    import inspect

    from denoise_cli.cli.denoise import denoise

    assert inspect.signature(denoise).parameters["overlap"].default == DEFAULT_OVERLAP
