"""weights.toml entries written by distill, export and the benchmarks parse back to what was written,
whatever the paths and descriptions hold."""

import tomllib

import pytest

from denoise_cli.registry.weights import load_registry
from denoise_cli.registry.entry import add_metrics, dump_entry, read_entry, toml_value, write_entry

AWKWARD = 'C:\\Users\\Zoë\\runs\\"cam" \t\x7f\x01 é 😀'


def test_an_entry_reads_back_as_written_even_with_windows_paths_and_quotes():
    entry = {"description": AWKWARD, "architecture": {"arch": "mwcnn", "params": 984748}, "channels": 3,
             "noise": "awgn", "sha256": "ab" * 32, "size": 12, "enabled": True, "source": {"local": AWKWARD},
             "training": {"command": f"denoise-cli distill --fit {AWKWARD}", "lr": 0.00025},
             "metrics": {"CBSD68/awgn:25": {"psnr": 29.18, "ssim": 0.8308, "images": 68, "seed": 0}}}
    text = dump_entry("cam-small.v2", entry)
    assert tomllib.loads(text) == {"models": {"cam-small.v2": entry}}
    assert "[models.\"cam-small.v2\".metrics]" in text and '"CBSD68/awgn:25" = { psnr = 29.18' in text


def test_an_empty_metrics_table_keeps_its_hint_and_add_metrics_fills_it(tmp_path):
    path = tmp_path / "entry.toml"
    write_entry(path, "cam", {"sha256": "00", "channels": 1, "noise": "n", "format": "safetensors"},
                comments={"metrics": "fill in with `denoise-cli eval`"})
    assert "# fill in with" in path.read_text()
    assert read_entry(path) == ("cam", {"sha256": "00", "channels": 1, "noise": "n", "format": "safetensors", "metrics": {}})
    add_metrics(path, "BSD68/awgn:25", {"psnr": 28.2, "ssim": 0.79, "images": 68, "seed": 0})
    add_metrics(path, "BSD68/awgn:50", {"psnr": 25.4, "ssim": 0.67, "images": 68, "seed": 0})
    name, entry = read_entry(path)
    assert list(entry["metrics"]) == ["BSD68/awgn:25", "BSD68/awgn:50"] and entry["metrics"]["BSD68/awgn:50"]["psnr"] == 25.4
    # and the registry reader takes it as one of its own entries
    (tmp_path / "weights.toml").write_text('default = "cam"\n' + path.read_text())
    assert load_registry(tmp_path / "weights.toml").get("cam").metrics["BSD68/awgn:25"]["psnr"] == 28.2


def test_values_toml_cannot_hold_are_refused():
    with pytest.raises(ValueError):
        toml_value(float("nan"))
    with pytest.raises(TypeError):
        toml_value([1, 2])
