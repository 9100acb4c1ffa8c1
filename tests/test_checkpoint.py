"""Model files are reproducible: the same weights and metadata give the same bytes (and sha256)."""

import hashlib

from conftest import tiny_model
from denoise_cli.registry.checkpoint import load_model, read_metadata, save_model


def test_saving_the_same_model_again_gives_the_same_bytes(tmp_path):
    model = tiny_model()
    meta = {"trained_by": "denoise-cli distill (unpaired)", "noise_mode": "synthetic", "fit_run": "runs/Zoë cam",
            "clean_dir": "photos", "note": 'a "quoted" note'}
    digests = set()
    for i in range(6):  # safetensors writes metadata in a random order per save; six saves of 8 keys all agree
        path = tmp_path / f"m{i}.safetensors"
        save_model(model, path, half=i % 2 == 1, **meta)
        digests.add((i % 2, hashlib.sha256(path.read_bytes()).hexdigest()))
        assert read_metadata(path) | meta == read_metadata(path) and load_model(path).config == model.config
    assert len(digests) == 2  # one fp32 file and one fp16 file


def _with_metadata(src, dst, **meta):
    from safetensors.torch import load_file, save_file

    save_file(load_file(str(src)), str(dst), metadata={**read_metadata(src), **meta})
    return dst


def test_metadata_is_checked_before_anything_is_built(tmp_path):
    import pytest

    from denoise_cli.errors import CheckpointError

    good = tmp_path / "good.safetensors"
    save_model(tiny_model(), good)
    cases = {"malformed": '{"channels": 3, "widths": ', "absurd": '{"channels": 3, "widths": [100000, 8, 8], "convs": 1}',
             "missing": '{"channels": 3}', "mismatch": '{"channels": 3, "widths": [8, 8, 8], "convs": 1}'}
    for name, config in cases.items():
        bad = _with_metadata(good, tmp_path / f"{name}.safetensors", config=config)
        with pytest.raises(CheckpointError) as e:
            load_model(bad)
        assert "\n" not in str(e.value) and name + ".safetensors" in str(e.value)
    with pytest.raises(CheckpointError, match="architecture"):
        load_model(_with_metadata(good, tmp_path / "other.safetensors", arch="unet"))
