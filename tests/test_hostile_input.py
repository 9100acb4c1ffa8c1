"""Hostile input to `denoise`: markup and control characters in names, odd tile and device values, standard output
closed, full or cut short, bad suffixes, -o FILE, runs racing over one batch, multi-page TIFF. Each ends in one clear
line and the right exit code, never a traceback, and the batch goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

EXAMPLE = Path(__file__).resolve().parents[1] / "denoise_cli" / "examples" / "noisy.png"


def _small(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _no_traceback(r: subprocess.CompletedProcess) -> str:
    err = r.stderr.decode(errors="replace")
    assert "Traceback" not in err and "Error:" not in err.replace("error:", ""), err
    return err


def test_markup_and_control_characters_in_names_are_printed_as_they_are(tmp_path: Path):
    folder = tmp_path / "a["
    folder.mkdir()
    (folder / "x]b.png").write_bytes(b"not an image")
    _small(tmp_path / "[bold red]x.png")
    (tmp_path / "e\x1b[31mz.png").write_bytes(b"junk")
    r = run_cli("denoise", str(tmp_path), "-r", "-o", str(tmp_path / "out"), "--json")
    err = _no_traceback(r)
    assert r.returncode == 1
    summary = json.loads(r.stdout)
    assert (summary["done"], summary["failed"]) == (1, 2)  # the batch went on past both bad files
    assert "a[/x]b.png" in err and "\\x1b[31mz.png" in err and "\x1b" not in err
    assert (tmp_path / "out" / "[bold red]x.png").exists()


@pytest.mark.parametrize("args", [["--tile", "1"], ["--tile", "7"], ["--tile", "8"], ["--tile", "64", "--overlap", "600"]])
def test_any_tile_and_overlap_works(tmp_path: Path, args):
    r = run_cli("denoise", str(_small(tmp_path / "a.png")), "-o", str(tmp_path / "out"), "-q", *args)
    _no_traceback(r)
    assert r.returncode == 0 and (tmp_path / "out" / "a.png").exists()


def test_tiles_far_smaller_than_their_context_blend_exactly():
    from denoise_cli.inference.tiles import blend_tiles

    src = np.random.default_rng(0).random((50, 37, 3)).astype(np.float32)
    for tile, overlap in ((1, 48), (8, 48), (16, 200), (64, 600)):
        dst = np.empty_like(src)
        blend_tiles(lambda t: t, src, dst, tile, overlap)
        assert np.allclose(dst, src, atol=1e-5), (tile, overlap)


@pytest.mark.parametrize("device", ["cuda:0", "cuda:7", "cuda:x", "gpu"])
def test_devices_this_machine_lacks_are_a_usage_error(tmp_path: Path, device):
    import torch

    if device.startswith("cuda:") and device[5:].isdigit() and torch.cuda.device_count() > int(device[5:]):
        pytest.skip("this machine has that GPU")
    r = run_cli("denoise", str(_small(tmp_path / "a.png")), "-o", str(tmp_path / "out"), "--device", device)
    err = _no_traceback(r)
    assert r.returncode == 2 and err.count("error:") == 1 and device in err


@pytest.mark.parametrize("suffix", ["/../x", "_x/y"])
def test_a_suffix_with_a_path_is_refused(tmp_path: Path, suffix):
    r = run_cli("denoise", str(_small(tmp_path / "a.png")), "--suffix", suffix)
    err = _no_traceback(r)
    assert r.returncode == 2 and "--suffix" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def _shell(cmd: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """A shell pipeline around `python -m denoise_cli`, for what only a shell can set up (closed or full stdout)."""
    env = {**os.environ, "DN": f"{sys.executable} -m denoise_cli"}
    return subprocess.run(["bash", "-c", cmd], capture_output=True, env=env, cwd=tmp_path, timeout=300)


def test_stdout_full_closed_or_cut_short_fails_in_one_line(tmp_path: Path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    src = _small(tmp_path / "a.png")
    full = _shell(f"$DN denoise - < {src} > /dev/full", tmp_path)
    assert full.returncode == 1 and _no_traceback(full).count("error:") == 1
    summary = _shell(f"$DN denoise {src} -o out --json > /dev/full", tmp_path)
    assert summary.returncode == 1 and "summary" in _no_traceback(summary)
    closed = _shell(f"$DN denoise - < {src} >&-", tmp_path)
    assert closed.returncode == 2 and "closed" in _no_traceback(closed)
    cut = _shell(f"$DN denoise - < {src} | head -c 10 > /dev/null; exit ${{PIPESTATUS[0]}}", tmp_path)
    assert cut.returncode == 1 and "stopped before" in _no_traceback(cut)
    whole = _shell(f"$DN denoise - < {src} | cat > b.png; exit ${{PIPESTATUS[0]}}", tmp_path)
    assert whole.returncode == 0 and Image.open(tmp_path / "b.png").size == (56, 40)


def test_o_names_the_output_file_for_one_input_and_is_refused_for_several(tmp_path: Path):
    a, b = _small(tmp_path / "a.png"), _small(tmp_path / "b.png", 1)
    r = run_cli("denoise", str(a), "-o", str(tmp_path / "clean.png"), "-q")
    assert r.returncode == 0 and (tmp_path / "clean.png").is_file()
    r = run_cli("denoise", str(a), "-o", str(tmp_path / "clean.tif"), "-q")
    assert r.returncode == 0 and Image.open(tmp_path / "clean.tif").format == "TIFF"
    r = run_cli("denoise", str(a), str(b), "-o", str(tmp_path / "both.png"))
    assert r.returncode == 2 and "one file" in _no_traceback(r) and not (tmp_path / "both.png").exists()
    r = run_cli("denoise", str(a), "-o", str(a))
    assert r.returncode == 2 and "is the input itself" in _no_traceback(r)


def test_an_output_another_run_finished_meanwhile_counts_as_skipped(tmp_path: Path):
    from denoise_cli.api import load_denoiser
    from denoise_cli.inference.batch import gather, plan, run_batch

    a, b = _small(tmp_path / "a.png"), _small(tmp_path / "b.png", 1)
    jobs = plan(gather([str(a), str(b)]), output=str(tmp_path / "out"), suffix=None, fmt=None)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(a.read_bytes())  # "the other run" finished a after this one planned
    den = load_denoiser(None, device="cpu", precision="fp32")
    results = list(run_batch(den, jobs, skip_existing=True))
    assert [(r.ok, r.skipped, r.error) for r in results] == [(False, True, None), (True, False, None)]
    again = list(run_batch(den, jobs, skip_existing=False))  # without --skip-existing an existing output is an error
    assert all(not r.ok and "exists" in r.error for r in again)


def test_multi_page_and_planar_tiffs_come_out_readable(tmp_path: Path):
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(2)
    tifffile.imwrite(tmp_path / "pages.tif", (rng.random((2, 32, 40, 3)) * 255).astype(np.uint8))
    tifffile.imwrite(tmp_path / "planar.tif", (rng.random((3, 32, 40)) * 255).astype(np.uint8), photometric="rgb",
                     planarconfig="separate")
    r = run_cli("denoise", str(tmp_path / "pages.tif"), str(tmp_path / "planar.tif"), "-o", str(tmp_path / "out"), "-q")
    assert r.returncode == 0, r.stderr
    for name in ("pages.tif", "planar.tif"):
        assert tifffile.imread(tmp_path / "out" / name).shape == (32, 40, 3)


def test_help_has_plain_usage_lines_and_no_formulas():
    for command, usage in (("denoise", "PHOTO..."), ("distill", "[CLEAN_DIR]..."), ("adapt", "NOISY_DIR [CLEAN_DIR]...")):
        out = run_cli(command, "--help", env={"COLUMNS": "300"}).stdout.decode()
        line = next(ln for ln in out.splitlines() if "Usage:" in ln)
        assert line.split("[OPTIONS]")[1].strip() == usage
        assert "x̂" not in out and "Σ" not in out and " dB" not in out


def test_adapt_speaks_of_a_larger_budget_not_of_resume(tmp_path: Path, capsys):
    from denoise_cli.cli import train

    (tmp_path / "metrics.jsonl").write_text("")
    train._length_note(tmp_path, 3, 100, "fit", resume=False)
    err = capsys.readouterr().err
    assert "--resume" not in err and "larger --time-budget" in err


def test_ctrl_c_says_how_to_continue(tmp_path: Path):
    import signal
    import time

    for i in range(60):
        _small(tmp_path / f"p{i:02d}.png", i)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "denoise_cli", "denoise", str(tmp_path), "-o", str(out)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out.exists() and any(out.iterdir())) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1].decode()
    if proc.returncode == 0:
        pytest.skip("the batch finished before the interrupt arrived")
    assert proc.returncode == 130 and "Traceback" not in err and "--skip-existing" in err
