"""Model files are reproducible: the same weights and metadata give the same bytes (and sha256)."""

import hashlib

from conftest import tiny_model
from denoise_cli.checkpoint import load_model, read_metadata, save_model


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
