"""Batches: results in order while reading ahead and writing behind, big photos one at a time, and an interrupt that
leaves only whole files."""

import numpy as np
import pytest

from conftest import tiny_model
from denoise_cli.inference import batch
from denoise_cli.inference.batch import gather, plan, run_batch
from denoise_cli.inference.denoiser import Denoiser
from denoise_cli.io import Photo, read_image, write_image


def _photos(folder, n, size=24):
    for i in range(n):
        write_image(Photo(np.random.default_rng(i).random((size, size + 8, 3)).astype(np.float32)), folder / f"p{i}.png")


def test_results_come_in_order_with_failures_in_their_place(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 4)
    (src / "p2.png").write_bytes(b"not a png")
    jobs = plan(gather([str(src)]), output=str(out), suffix=None, fmt=None)
    started = []
    results = list(run_batch(Denoiser(tiny_model(3), tile=0), jobs, on_start=lambda i, w: started.append(i)))
    assert [r.source.rsplit("/", 1)[1] for r in results] == ["p0.png", "p1.png", "p2.png", "p3.png"]
    assert [r.ok for r in results] == [True, True, False, True] and "not an image" in results[2].error
    assert started == [0, 1, 2, 3]
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png", "p3.png"]
    assert read_image(out / "p3.png").pixels.shape == (24, 32, 3)


def test_big_photos_go_one_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "OVERLAP_MAX_PIXELS", 100)  # every photo counts as big
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 3)
    jobs = plan(gather([str(src)]), output=str(out), suffix=None, fmt=None)
    assert all(r.ok for r in run_batch(Denoiser(tiny_model(3), tile=0), jobs))
    assert len(list(out.iterdir())) == 3


def test_an_interrupt_leaves_finished_outputs_whole_and_nothing_partial(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(src, 3, size=64)
    jobs = plan(gather([str(src)]), output=str(out), suffix=None, fmt=None)
    den = Denoiser(tiny_model(3), tile=0)
    calls = 0
    real = den.denoise

    def interrupted(pixels, notices=None, on_tile=None):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        return real(pixels, notices, on_tile)

    den.denoise = interrupted
    with pytest.raises(KeyboardInterrupt):
        list(run_batch(den, jobs))
    assert [p.name for p in out.iterdir()] == ["p0.png"]  # the first, written whole; no temporary files left
    assert read_image(out / "p0.png").pixels.shape == (64, 72, 3)
