"""benchmarks/device_bundle.py: what goes to the GPU machine comes back out pixel for pixel."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.device_bundle import pack, unpack


def test_pack_unpack_restores_every_file_exactly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    data = Path("data/photos")
    data.mkdir(parents=True)
    images = {"rgb.png": rng.integers(0, 256, (20, 30, 3), dtype=np.uint8),
              "gray.png": rng.integers(0, 256, (20, 30), dtype=np.uint8),
              "rgba.png": rng.integers(0, 256, (20, 30, 4), dtype=np.uint8),
              "deep.png": rng.integers(0, 65536, (20, 30), dtype=np.uint16)}  # 16-bit: travels as bytes
    for name, a in images.items():
        Image.fromarray(a).save(data / name)
    (data / "sub").mkdir()
    (data / "sub" / "config.json").write_text('{"a": 1}')
    manifest = pack([str(data), "data/photos/rgb.png"], Path("bundle"))
    stored = {Path(e["path"]).name: e["stored"] for e in manifest["files"]}
    assert stored["rgb.png"].endswith(".webp") and stored["gray.png"].endswith(".webp")
    assert not stored["deep.png"].endswith(".webp")

    assert unpack(Path("bundle"), Path("device")) == 6
    for name, a in images.items():
        back = Image.open(Path("device") / data / name)
        assert back.mode == Image.open(data / name).mode and np.array_equal(np.asarray(back), a), name
    assert (Path("device") / data / "sub" / "config.json").read_text() == '{"a": 1}'

    copy = Path("bundle") / next(e["stored"] for e in manifest["files"] if e["path"].endswith("config.json"))
    copy.write_text('{"a": 2}')
    with pytest.raises(ValueError, match="config.json"):
        unpack(Path("bundle"), Path("device2"))
