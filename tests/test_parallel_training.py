"""fit and distill under torchrun: two gloo processes with half the batch each take the steps one process takes with
the whole batch, and only rank 0 writes."""

import os
import subprocess
import sys

from safetensors.torch import load_file

from conftest import noisy_folder, run_cli


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "denoise_cli", *args], capture_output=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"})


def _close(a: dict, b: dict, atol: float) -> float:
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst < atol, worst
    return worst


def test_two_processes_train_as_one_with_the_whole_batch(tmp_path):
    noisy = noisy_folder(tmp_path, 1)
    one, two = tmp_path / "one", tmp_path / "two"
    r = run_cli("fit", str(noisy), "--run", str(one), "--iterations", "4", "--patch", "16", "--batch", "4")
    assert r.returncode == 0, r.stderr
    r = _torchrun("fit", str(noisy), "--run-dir", str(two), "--iterations", "4", "--patch", "16", "--batch", "2",
                  "--device", "cpu")
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    err = r.stderr.decode()
    assert "2 processes on cpu" in err and "2 patches per step each, 4 in all" in err
    assert err.count("Learning the noise") == 1  # rank 0 alone speaks
    _close(load_file(one / "checkpoint.safetensors"), load_file(two / "checkpoint.safetensors"), 1e-4)
    steps = [line for line in (two / "metrics.jsonl").read_text().splitlines() if '"final"' in line]
    assert len(steps) == 1  # one log, rank 0's

    # distill on the photos' own pairs: the same again
    for run, launch, batch in ((one, run_cli, "4"), (two, _torchrun, "2")):
        r = launch("distill", "--fit", str(run), "--iterations", "3", "--patch", "16", "--batch", batch,
                   "--pairs-share", "1", "--stage1-weight", "1", "--init", "none", "--device", "cpu")
        assert r.returncode == 0, (r.stderr if isinstance(r.stderr, str) else r.stderr.decode())[-3000:]
    _close(load_file(one / "model" / "model.safetensors"), load_file(two / "model" / "model.safetensors"), 1e-4)


def test_resume_under_torchrun_continues_the_run(tmp_path):
    noisy = noisy_folder(tmp_path, 1)
    run = tmp_path / "run"
    assert _torchrun("fit", str(noisy), "--run-dir", str(run), "--iterations", "2", "--patch", "16", "--batch",
                     "2").returncode == 0
    r = _torchrun("fit", str(noisy), "--run-dir", str(run), "--iterations", "4", "--resume")
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    from safetensors import safe_open

    with safe_open(str(run / "checkpoint.safetensors"), framework="pt") as f:
        assert f.metadata()["step"] == "4"
