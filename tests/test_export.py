"""`weights export` writes a Hub-ready folder; `--upload` commits it through huggingface_hub to a
(local) Hub, from which `denoise --weights hf://…` then downloads the very same bytes."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import run_cli
from denoise_cli.io import Photo, write_image
from denoise_cli.registry.entry import read_entry
from hub_server import COMMIT, HubServer

ENTRY = """[models.cam-small]
description = "test model"
channels = 3
noise = "learned (synthetic mode)"
[models.cam-small.training]
kind = "unpaired"
command = "denoise-cli distill --fit runs/cam clean/"
[models.cam-small.metrics]
"CBSD68/awgn:25" = { psnr = 30.12, ssim = 0.85, images = 68, seed = 0 }
"""


def _model_dir(tmp_path, tiny_weights):
    d = tmp_path / "run" / "model"
    d.mkdir(parents=True)
    shutil.copyfile(tiny_weights, d / "model.safetensors")
    (d / "entry.toml").write_text(ENTRY)
    return d


def test_export_writes_a_model_card_with_the_measurements(tmp_path, tiny_weights):
    d = _model_dir(tmp_path, tiny_weights)
    r = run_cli("weights", "export", str(d), str(tmp_path / "hub"))
    assert r.returncode == 0, r.stderr
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "| CBSD68/awgn:25 | 30.12 | 0.85 |" in card
    assert hashlib.sha256(tiny_weights.read_bytes()).hexdigest() in card


def test_export_half_halves_the_file_and_keeps_the_model(tmp_path, tiny_weights):
    from denoise_cli.registry.checkpoint import load_model, read_metadata

    d = _model_dir(tmp_path, tiny_weights)
    r = run_cli("weights", "export", str(d), str(tmp_path / "hub"), "--half")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "hub" / "model.safetensors"
    assert out.stat().st_size < 0.6 * tiny_weights.stat().st_size
    assert read_metadata(out)["config"] == read_metadata(tiny_weights)["config"]
    a, b = load_model(tiny_weights).state_dict(), load_model(out).state_dict()
    assert all(np.allclose(a[k], b[k], atol=1e-3, rtol=1e-3) for k in a)
    # the exported entry describes the exported (fp16) file, not the run's fp32 one
    name, entry = read_entry(tmp_path / "hub" / "entry.toml")
    assert name == "cam-small" and entry["metrics"]["CBSD68/awgn:25"]["psnr"] == 30.12
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert entry["sha256"] == sha != hashlib.sha256(tiny_weights.read_bytes()).hexdigest()
    assert entry["size"] == out.stat().st_size and entry["format"] == "safetensors (fp16)" and "source" not in entry
    assert entry["sha256"] in (tmp_path / "hub" / "README.md").read_text()


def test_upload_to_a_local_hub_then_download_it_back(tmp_path, tiny_weights):
    d = _model_dir(tmp_path, tiny_weights)
    img = tmp_path / "in.png"
    write_image(Photo(np.full((16, 16, 3), 0.5, np.float32)), img)
    with HubServer({}, token="hf_test") as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_TOKEN": "hf_test"}
        r = run_cli("weights", "export", str(d), str(tmp_path / "hub"), "--upload", "me/cam", env=env)
        assert r.returncode == 0, r.stderr
        assert COMMIT.encode() in r.stderr and hub.commits == ["me/cam"]
        assert hub.files[("me/cam", "model.safetensors")] == tiny_weights.read_bytes()
        assert {name for repo, name in hub.files} == {"model.safetensors", "config.json", "entry.toml", "README.md"}
        r = run_cli("denoise", str(img), "-q", "--weights", f"hf://me/cam/model.safetensors@{COMMIT}", env=env)
        assert r.returncode == 0, r.stderr
        # the local entry.toml is pinned to the upload's commit and, put in a registry, fetches and verifies
        name, entry = read_entry(tmp_path / "hub" / "entry.toml")
        assert entry["source"] == {"repo_id": "me/cam", "filename": "model.safetensors", "revision": COMMIT}
        registry = tmp_path / "weights.toml"
        registry.write_text(f'default = "{name}"\n' + (tmp_path / "hub" / "entry.toml").read_text())
        fetch = ("import sys; from pathlib import Path; from denoise_cli.registry.weights import fetch, load_registry; "
                 "print(fetch(load_registry(Path(sys.argv[1])).get(sys.argv[2])))")
        r = subprocess.run([sys.executable, "-c", fetch, str(registry), name], capture_output=True, text=True,
                           env={**os.environ, **env}, timeout=120)
        assert r.returncode == 0, r.stderr
        assert Path(r.stdout.strip()).read_bytes() == tiny_weights.read_bytes()
        # a wrong token is one clear line and a distinct exit code, not a traceback
        r = run_cli("weights", "export", str(d), str(tmp_path / "hub2"), "--upload", "me/cam",
                    env={**env, "HF_TOKEN": "hf_wrong"})
        assert r.returncode == 1 and b"upload failed" in r.stderr and b"Traceback" not in r.stderr
