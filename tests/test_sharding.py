"""Many processes, one batch: --shard K/N, torchrun, and --skip-existing give the outputs one process gives."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from denoise_cli.inference.batch import Job, parse_shard, shard, skip_done
from denoise_cli.errors import ConfigError
from denoise_cli.io import Photo, write_image

from conftest import run_cli


def _photos(folder: Path, count: int = 5) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        write_image(Photo(rng.random((24 + 4 * i, 32, 3)).astype(np.float32)), folder / f"p{i}.png")
    return folder


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_shards_split_a_plan_round_robin_and_refuse_bad_specs():
    jobs = [Job(str(i)) for i in range(7)]
    parts = [shard(jobs, k, 3) for k in (1, 2, 3)]
    assert [[j.source for j in p] for p in parts] == [["0", "3", "6"], ["1", "4"], ["2", "5"]]
    assert parse_shard("2/8") == (2, 8)
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(ConfigError):
            parse_shard(bad)


def test_skip_done_counts_existing_outputs_as_done(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    todo, done = skip_done([Job("x", str(tmp_path / "a.png")), Job("y", str(tmp_path / "b.png")),
                            Job("z", str(tmp_path / "c.png"), error="no such file")])
    assert [j.source for j in done] == ["x"] and [j.source for j in todo] == ["y", "z"]


def test_shards_write_exactly_what_one_process_writes(tmp_path, tiny_weights):
    src = _photos(tmp_path / "in")
    one, split = tmp_path / "one", tmp_path / "split"
    assert run_cli("denoise", str(src), "-o", str(one), "-w", str(tiny_weights)).returncode == 0
    for k in (1, 2, 3):
        r = run_cli("denoise", str(src), "-o", str(split), "-w", str(tiny_weights), "--shard", f"{k}/3")
        assert r.returncode == 0, r.stderr
    assert _outputs(split) == _outputs(one) and len(_outputs(one)) == 5
    r = run_cli("denoise", str(src), "-o", str(split), "--shard", "4/3")
    assert r.returncode == 2 and b"K/N" in r.stderr and b"Traceback" not in r.stderr


def test_skip_existing_continues_an_interrupted_batch(tmp_path, tiny_weights):
    src = _photos(tmp_path / "in")
    out = tmp_path / "out"
    assert run_cli("denoise", str(src), "-o", str(out), "-w", str(tiny_weights)).returncode == 0
    (out / "p3.png").unlink()
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r = run_cli("denoise", str(src), "-o", str(out), "-w", str(tiny_weights), "--skip-existing", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["done"] == 1 and summary["skipped"] == 4 and summary["results"][0]["source"].endswith("p3.png")
    assert all(p.stat().st_mtime_ns == stamps[p.name] for p in out.iterdir() if p.name != "p3.png")
    r = run_cli("denoise", str(src), "-o", str(out), "--skip-existing")  # all done: exit 0, no model loaded
    assert r.returncode == 0 and b"5 output(s) exist" in r.stderr
    r = run_cli("denoise", str(src), "-o", str(out), "--skip-existing", "--overwrite")
    assert r.returncode == 2


def test_torchrun_splits_the_batch_and_prints_one_summary(tmp_path, tiny_weights):
    src = _photos(tmp_path / "in")
    one, ranks = tmp_path / "one", tmp_path / "ranks"
    assert run_cli("denoise", str(src), "-o", str(one), "-w", str(tiny_weights)).returncode == 0
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "-m", "denoise_cli", "denoise", str(src), "-o", str(ranks), "-w", str(tiny_weights),
                        "--json", "--device", "cpu"],
                       capture_output=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert _outputs(ranks) == _outputs(one)
    summary = json.loads(r.stdout)  # rank 0's, for all five photos; the other rank prints nothing on stdout
    assert summary["done"] == 5 and summary["device"].startswith("2 processes")
    assert sorted(Path(x["source"]).name for x in summary["results"]) == [f"p{i}.png" for i in range(5)]
