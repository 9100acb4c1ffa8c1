"""The denoise command as a user runs it: batches with bad files, outputs, pipes, exit codes."""

import json

import numpy as np
from PIL import Image

from conftest import run_cli
from denoise_cli.io import Photo, encode_image, read_image, write_image
from denoise_cli.registry.weights import load_registry


def _png(path, h=32, w=40, c=3, seed=0):
    px = np.random.default_rng(seed).random((h, w, c)).astype(np.float32)
    write_image(Photo(px), path)
    return path


def test_batch_with_bad_files_continues_and_reports_one_line_each(tmp_path, tiny_weights):
    src = tmp_path / "in"
    src.mkdir()
    _png(src / "good.png")
    (src / "zero.png").write_bytes(b"")
    (src / "text.png").write_text("no image here")
    good = encode_image(Photo(np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)), "PNG")
    (src / "trunc.png").write_bytes(good[:300])
    out = tmp_path / "out"
    r = run_cli("denoise", str(src), "-o", str(out), "--weights", str(tiny_weights))
    err = r.stderr.decode()
    assert r.returncode == 1
    assert "Traceback" not in err
    for name in ("zero.png", "text.png", "trunc.png"):
        assert sum(name in line and "error" in line for line in err.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]


def test_outputs_never_overwrite_inputs_or_existing_files(tmp_path, tiny_weights):
    img = _png(tmp_path / "a.png")
    before = img.read_bytes()
    r = run_cli("denoise", str(img), "--suffix", "", "-w", str(tiny_weights))
    assert r.returncode == 1 and b"overwrite an input" in r.stderr
    assert img.read_bytes() == before
    assert run_cli("denoise", str(img), "-w", str(tiny_weights)).returncode == 0
    out = tmp_path / "a_denoised.png"
    stamp = out.read_bytes()
    r = run_cli("denoise", str(img), "-w", str(tiny_weights))
    assert r.returncode == 1 and b"--overwrite" in r.stderr and out.read_bytes() == stamp
    assert run_cli("denoise", str(img), "-w", str(tiny_weights), "--overwrite").returncode == 0


def test_stdin_to_stdout_pipeline(tmp_path, tiny_weights):
    data = encode_image(Photo(np.random.default_rng(2).random((24, 30, 3)).astype(np.float32)), "PNG")
    r = run_cli("denoise", "-", "-w", str(tiny_weights), stdin=data)
    assert r.returncode == 0, r.stderr
    out = read_image(r.stdout)
    assert out.pixels.shape == (24, 30, 3)
    assert r.stderr == b""  # quiet when stdout carries the image


def test_json_summary_and_default_embedded_model(tmp_path):
    _png(tmp_path / "x.png", 64, 64)
    r = run_cli("denoise", str(tmp_path / "x.png"), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["done"] == 1 and summary["failed"] == 0
    assert summary["results"][0]["target"].endswith("x_denoised.png")
    reg = load_registry()
    assert (summary["weights"], summary["weights_gray"]) == (reg.default, reg.default_gray)  # provenance of the outputs
    assert summary["ensemble"] is False
    r = run_cli("denoise", str(tmp_path / "x.png"), "-o", str(tmp_path / "ens"), "--ensemble", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ensemble"] is True, r.stderr
    single, ens = read_image(tmp_path / "x_denoised.png").pixels, read_image(tmp_path / "ens" / "x.png").pixels
    assert ens.shape == single.shape and not np.array_equal(ens, single)  # the flag reaches the denoiser


def test_keeps_16bit_alpha_and_gray(tmp_path, tiny_weights):
    rng = np.random.default_rng(3)
    alpha = rng.integers(0, 65535, (20, 20)).astype(np.uint16)
    write_image(Photo(rng.random((20, 20, 3)).astype(np.float32), 16, alpha=alpha), tmp_path / "a.png")
    Image.fromarray((rng.random((20, 20)) * 255).astype(np.uint8)).save(tmp_path / "g.png")
    r = run_cli("denoise", str(tmp_path / "a.png"), str(tmp_path / "g.png"), "-o", str(tmp_path / "o"),
                "-w", str(tiny_weights))
    assert r.returncode == 0, r.stderr
    a = read_image(tmp_path / "o" / "a.png")
    assert a.bits == 16 and np.array_equal(a.alpha, alpha)
    assert read_image(tmp_path / "o" / "g.png").channels == 1
    assert b"gray image denoised with a color model" in r.stderr


def test_recursive_folders_keep_structure(tmp_path, tiny_weights):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    _png(tmp_path / "in" / "sub" / "deep.png")
    _png(tmp_path / "in" / "top.png")
    r = run_cli("denoise", str(tmp_path / "in"), "-r", "-o", str(tmp_path / "out"), "-w", str(tiny_weights), "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "sub" / "deep.png").exists() and (tmp_path / "out" / "top.png").exists()


def test_usage_errors_exit_2_without_traceback(tmp_path, tiny_weights):
    img = _png(tmp_path / "a.png")
    for args in (["denoise", str(img), "-w", str(tmp_path / "missing.safetensors")],
                 ["denoise", str(img), "--device", "tpu"],
                 ["denoise", str(img), "--format", "gif"],
                 ["eval", "--data", str(tmp_path), "--noise", "bogus:1"]):
        r = run_cli(*args, fresh=True)  # a real process: the exit code a shell sees
        assert r.returncode == 2, (args, r.stderr)
        assert b"Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 6, args  # one message
    r = run_cli("denoise", str(tmp_path / "empty-dir-none"), fresh=True)  # a missing input fails the file, as cp does
    assert r.returncode == 1 and b"no such file" in r.stderr and b"Traceback" not in r.stderr
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 100)
    r = run_cli("denoise", str(img), "-w", str(corrupt))
    assert r.returncode == 2 and b"corrupt.safetensors" in r.stderr and b"Traceback" not in r.stderr


def test_weights_list_shows_default():
    r = run_cli("weights", "list", "--json")
    rows = json.loads(r.stdout)
    assert any(row["default"] and row["local"] for row in rows)
    assert sum(row["default_gray"] for row in rows) == 1


def test_weights_list_table_prints_every_name_whole_on_a_narrow_terminal():
    from denoise_cli.registry.weights import load_registry

    r = run_cli("weights", "list", env={"COLUMNS": "80"})
    out = r.stdout.decode()
    assert r.returncode == 0 and max(len(line) for line in out.splitlines()) <= 80
    assert all(name in out for name in load_registry().entries) and "default for gray" in out


def test_raw_input_becomes_16bit_tiff(tmp_path, tiny_weights):
    from conftest import make_dng

    make_dng(tmp_path / "IMG_1.dng")
    r = run_cli("denoise", str(tmp_path / "IMG_1.dng"), "-w", str(tiny_weights))
    assert r.returncode == 0, r.stderr
    out = read_image(tmp_path / "IMG_1_denoised.tif")
    assert out.bits == 16 and out.channels == 3


def test_summary_line_keeps_three_significant_figures_of_slow_throughput():
    from denoise_cli.inference.batch import summary_line

    assert summary_line(2, 1, 2.46, 200.0, "cpu") == "2 denoised, 1 failed · 0.0123 MP/s on cpu"
    assert summary_line(2, 0, 0.5, 0.1, "cpu") == "2 denoised, 0 failed · on cpu"  # too few pixels for a speed
    assert summary_line(3, 0, 30.0, 10.0, "cpu", skipped=1, where="into out/", model="model m") == \
        "3 denoised, 0 failed, 1 skipped (output exists) · into out/ · model m · 3 MP/s on cpu"
    assert summary_line(0, 3, 0.0, 0.0, "cpu") == "0 denoised, 3 failed"


def _corrupt_png(path):
    data = bytearray(_png(path, 64, 64).read_bytes())
    at = data.find(b"IDAT") + 20
    data[at : at + 40] = bytes(b ^ 0xFF for b in data[at : at + 40])
    path.write_bytes(bytes(data))
    return path


def test_hostile_inputs_get_one_line_each_and_the_batch_goes_on(tmp_path, tiny_weights):
    src = tmp_path / "in"
    src.mkdir()
    _png(src / "good.png")
    _corrupt_png(src / "corrupt.png")
    (src / "loop1.png").symlink_to(src / "loop2.png")
    (src / "loop2.png").symlink_to(src / "loop1.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(src / "dot.png")
    Image.fromarray(np.zeros((4, 3, 3), np.uint8)).save(src / "tiny.png")
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(src / "anim.gif", save_all=True,
                                                       append_images=[Image.fromarray(np.ones((9, 9, 3), np.uint8))])
    out = tmp_path / "out"
    r = run_cli("denoise", str(src), str(src / "loop1.png"), "-o", str(out), "-w", str(tiny_weights))
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err, err
    assert sum("corrupt.png" in line and "error" in line for line in err.splitlines()) == 1
    assert sum("loop1.png" in line and "error" in line for line in err.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["anim.png", "dot.png", "good.png", "tiny.png"]
    assert "only the first" in err
    assert read_image(out / "dot.png").pixels.shape == (1, 1, 3)


def test_write_failures_are_reported_per_file(tmp_path, tiny_weights):
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png", seed=1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").mkdir()  # an existing output that is a folder
    r = run_cli("denoise", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "out"),
                "-w", str(tiny_weights))
    assert r.returncode == 1 and b"is a folder" in r.stderr and b"Traceback" not in r.stderr
    assert (tmp_path / "out" / "b.png").is_file()
    r = run_cli("denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.png"), "-w", str(tiny_weights))
    assert r.returncode == 2 and b"is the input itself" in r.stderr


def test_a_full_disk_fails_the_file_and_leaves_nothing_behind(tmp_path, tiny_weights):
    import resource
    import signal

    def small_files_only() -> None:  # writes past 4 KB fail as on a full disk (EFBIG instead of ENOSPC)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    _png(tmp_path / "a.png", 64, 64)
    r = run_cli("denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "-w", str(tiny_weights),
                preexec_fn=small_files_only)
    assert r.returncode == 1 and b"cannot write" in r.stderr and b"Traceback" not in r.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_stdin_with_an_output_folder_is_written_there(tmp_path, tiny_weights):
    data = encode_image(Photo(np.random.default_rng(2).random((24, 30, 3)).astype(np.float32)), "PNG")
    r = run_cli("denoise", "-", "-o", str(tmp_path / "out"), "-w", str(tiny_weights), stdin=data)
    assert r.returncode == 0 and r.stdout == b"", r.stderr
    assert read_image(tmp_path / "out" / "stdin.png").pixels.shape == (24, 30, 3)


def test_a_closed_stdout_is_an_error(tmp_path, tiny_weights):
    import os
    import subprocess
    import sys

    data = encode_image(Photo(np.random.default_rng(2).random((256, 256, 3)).astype(np.float32)), "PNG")
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: the first write gets EPIPE
    p = subprocess.run([sys.executable, "-m", "denoise_cli", "denoise", "-", "-w", str(tiny_weights)], input=data,
                       stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    os.close(write_end)
    assert p.returncode == 1 and b"standard output was closed" in p.stderr and b"Traceback" not in p.stderr
    assert b"Exception ignored" not in p.stderr


def test_weights_that_are_not_finite_are_refused(tmp_path):
    import torch

    from conftest import tiny_model
    from denoise_cli.registry.checkpoint import save_model

    model = tiny_model()
    with torch.no_grad():
        model.enc1[0].weight.fill_(float("nan"))
    save_model(model, tmp_path / "nan.safetensors")
    img = _png(tmp_path / "a.png")
    r = run_cli("denoise", str(img), "-w", str(tmp_path / "nan.safetensors"))
    assert r.returncode == 2 and b"not finite" in r.stderr and not (tmp_path / "a_denoised.png").exists()


def test_strength_outside_0_to_1_is_a_usage_error(tmp_path, tiny_weights):
    r = run_cli("denoise", str(_png(tmp_path / "a.png")), "-w", str(tiny_weights), "--strength", "1.5")
    assert r.returncode == 2 and b"Traceback" not in r.stderr


def test_negative_tiles_and_overlaps_are_usage_errors(tmp_path, tiny_weights):
    img = _png(tmp_path / "a.png")
    for args in (["--tile", "-5"], ["--overlap", "-3"], ["--max-pixels", "0"]):
        r = run_cli("denoise", str(img), "-w", str(tiny_weights), *args)
        assert r.returncode == 2 and b"Traceback" not in r.stderr, args
    assert not (tmp_path / "a_denoised.png").exists()


def test_missing_inputs_are_reported_without_loading_a_model(tmp_path):
    r = run_cli("denoise", str(tmp_path / "nope.png"), str(tmp_path / "neither.jpg"))
    assert r.returncode == 1 and r.stderr.count(b"no such file") == 2 and b"Traceback" not in r.stderr
