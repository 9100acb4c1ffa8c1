"""The real-camera benchmark hands `adapt` a camera's noisy crops and unrelated clean images, never a reference."""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import benchmarks.real_cameras as rc


def _pairs_folder(root: Path) -> Path:
    data = root / "pairs"
    for kind in ("noisy", "clean"):
        (data / kind).mkdir(parents=True)
        for name in ("CamA_1_scene.png", "CamA_2_scene.png", "CamB_1_scene.png"):
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(data / kind / name)
    return data


def test_adapt_sees_each_cameras_noisy_crops_only(tmp_path, monkeypatch):
    data = _pairs_folder(tmp_path)
    monkeypatch.setattr(rc, "RUNS", tmp_path / "runs")
    commands = []

    class Finished:
        def __init__(self, cmd, **_):  # an adapt that finished at once, leaving its run folder
            commands.append(cmd)
            Path(cmd[cmd.index("--run") + 1]).mkdir(parents=True)
            self.returncode = 0

        def poll(self):
            return 0

    monkeypatch.setattr(rc.subprocess, "Popen", Finished)
    monkeypatch.setattr(rc.time, "sleep", lambda _: None)
    train = tmp_path / "train"
    args = argparse.Namespace(setting="t", jobs=2, threads=1, clean=train, budget="1m", extra=[])
    rc.adapt_all(data, rc.cameras(data), args)

    assert [c[3] for c in commands] == ["adapt", "adapt"]
    for cmd, cam in zip(commands, ("CamA", "CamB")):
        noisy, clean_train = Path(cmd[4]), Path(cmd[5])
        assert clean_train == train
        seen = sorted(p.resolve() for p in noisy.iterdir())
        assert seen == sorted((data / "noisy" / n).resolve() for n in rc.cameras(data)[cam])
        # nothing on the line reaches the references
        reachable = [Path(a).resolve() for a in cmd if Path(a).exists()] + seen
        assert not any(p.is_relative_to((data / "clean").resolve()) for p in reachable)
