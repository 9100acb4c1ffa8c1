"""The registry, the embedded default, and real huggingface_hub downloads from a local server."""

import hashlib
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli
from denoise_cli.registry import weights as W
from denoise_cli.registry.checkpoint import CheckpointError, load_model, save_model
from hub_server import COMMIT, HubServer

REPO, FILE = "denoise-cli/test-weights", "tiny.safetensors"


def test_registry_default_is_embedded_and_verifies():
    reg = W.load_registry()
    entry = reg.get(reg.default)
    assert entry.embedded, "the default must work without a network"
    path = W.resolve(None)
    assert W.sha256_file(path) == entry.sha256
    assert load_model(path).config.channels == entry.channels


def test_every_entry_states_provenance_and_measurements():
    for e in W.load_registry().entries.values():
        assert {"command", "data", "hardware", "time"} <= set(e.training), e.name
        assert e.metrics, f"{e.name} has no measured metrics"


def test_unknown_and_missing_weights_are_clear_errors(tmp_path):
    with pytest.raises(W.WeightsError, match="unknown weights"):
        W.resolve("no-such-model")
    with pytest.raises(W.WeightsError, match="not found"):
        W.resolve(str(tmp_path / "nope.safetensors"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        load_model(W.resolve(str(bad)))


def test_tampered_embedded_file_is_refused(tmp_path, tiny_weights):
    entry = W.WeightsEntry(name="x", sha256="0" * 64, channels=3, noise="awgn:25", embedded=str(tiny_weights))
    with pytest.raises(W.WeightsError, match="sha256 mismatch"):
        W.fetch(entry)


def _registry(tmp_path: Path, sha: str) -> Path:
    reg = tmp_path / "weights.toml"
    reg.write_text(textwrap.dedent(f"""
        default = "hubbed"
        [models.hubbed]
        channels = 3
        noise = "awgn:25"
        sha256 = "{sha}"
        source = {{ repo_id = "{REPO}", filename = "{FILE}", revision = "{COMMIT}" }}
        training = {{ command = "test", data = "none", hardware = "none", time = "0" }}
        metrics = {{ "none" = {{ psnr = 0.0 }} }}
    """))
    return reg


def _script(reg: Path, call: str) -> str:
    return (f"from pathlib import Path; from denoise_cli.registry import weights as W; "
            f"W.REGISTRY_CANDIDATES = (Path({str(reg)!r}),); {call}")


def test_hub_download_cache_offline_and_tamper(tmp_path, tiny_weights):
    data = tiny_weights.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    reg = _registry(tmp_path, sha)
    home = tmp_path / "hf"
    with HubServer({(REPO, FILE): data}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(home), "HF_HUB_DISABLE_TELEMETRY": "1"}
        # 1. online: downloaded through huggingface_hub into HF_HOME and verified
        r = run_cli_script(_script(reg, "print(W.resolve('hubbed'))"), env)
        assert r.returncode == 0, r.stderr
        assert str(home) in r.stdout and any("resolve" in q for q in hub.requests)
        # 2. offline with the file cached: works without touching the server
        hub.requests.clear()
        r = run_cli_script(_script(reg, "print(W.resolve('hubbed'))"), {**env, "HF_HUB_OFFLINE": "1"})
        assert r.returncode == 0, r.stderr
        assert not [q for q in hub.requests if "resolve" in q]
    # 3. offline, empty cache: one clear line
    r = run_cli_script(_script(reg, "W.resolve('hubbed')"),
                       {"HF_HOME": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert "offline mode is on" in r.stderr
    # 4. the server hands out a tampered file: refused
    with HubServer({(REPO, FILE): data[:-8] + b"tampered"}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf2"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        r = run_cli_script(_script(reg, "W.resolve('hubbed')"), env)
        assert r.returncode != 0 and "sha256 mismatch" in r.stderr
    # 5. unreachable hub: a WeightsUnavailableError naming what to check (the CLI adds its hint: test below)
    r = run_cli_script(_script(reg, "W.resolve('hubbed')"),
                       {"HF_HOME": str(tmp_path / "hf3"), "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert "WeightsUnavailableError" in r.stderr and "HF_ENDPOINT" in r.stderr


def test_hf_address_through_the_cli(tmp_path, tiny_weights):
    data = tiny_weights.read_bytes()
    from denoise_cli.io import Photo, write_image
    import numpy as np

    img = tmp_path / "in.png"
    write_image(Photo(np.full((16, 16, 3), 0.5, np.float32)), img)
    with HubServer({(REPO, FILE): data}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        r = run_cli("denoise", str(img), "-q", "--weights", f"hf://{REPO}/{FILE}@{COMMIT}", env=env)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "in_denoised.png").exists()
        r = run_cli("denoise", str(img), "-q", "--weights", f"hf://{REPO}/missing.safetensors", env=env)
        assert r.returncode == 2 and b"not found on the Hub" in r.stderr and b"Traceback" not in r.stderr
    r = run_cli("denoise", str(img), "-q", "--weights", f"hf://{REPO}/{FILE}", env={"HF_ENDPOINT": "http://127.0.0.1:9",
                                                                                     "HF_HOME": str(tmp_path / "hf2")})
    assert r.returncode == 2 and b"cannot reach" in r.stderr and b"--weights PATH" in r.stderr  # the CLI's hint


def run_cli_script(code: str, env: dict):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_local_run_folder(tmp_path, tiny_weights):
    folder = tmp_path / "run" / "model"
    save_model(load_model(tiny_weights), folder / "model.safetensors")
    assert W.resolve(str(folder)) == folder / "model.safetensors"


def test_default_denoiser_has_a_gray_model_for_gray_images():
    from denoise_cli.api import load_denoiser

    reg = W.load_registry()
    assert reg.default_gray and reg.get(reg.default_gray).channels == 1
    assert load_denoiser(None, device="cpu").gray_model is not None


def test_a_malformed_registry_is_one_line(tmp_path):
    cases = {"syntax.toml": "default = [", "keys.toml": 'default = "x"\n[models.x]\nchannels = 3\n',
             "default.toml": 'default = "y"\n'}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(W.WeightsError) as e:
            W.load_registry(tmp_path / name)
        assert name in str(e.value) and "\n" not in str(e.value)


def test_an_unreachable_hub_fails_at_once(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    slept = []
    monkeypatch.setattr(time, "sleep", lambda s: slept.append(s))  # huggingface_hub's retries back off by sleeping
    with pytest.raises(W.WeightsError, match="cannot reach"):
        W.resolve("hf://owner/repo/model.safetensors")
    assert sum(slept) < 2  # no retry loop: huggingface_hub alone backs off for about 25 s
