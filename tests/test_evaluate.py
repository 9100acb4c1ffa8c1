import json

import numpy as np
import pytest

from conftest import run_cli
from denoise_cli.evaluation.scoring import classical, evaluate, summarize, synthetic_pairs
from denoise_cli.io import Photo, read_image, write_image
from denoise_cli.evaluation.metrics import psnr, to_255


@pytest.fixture
def clean_dir(tmp_path, smooth_rgb):
    d = tmp_path / "clean"
    for i in range(2):
        write_image(Photo(np.roll(smooth_rgb, i * 5, axis=1)), d / f"im{i}.png")
    return d


def test_identity_scores_the_noisy_image(clean_dir):
    rows = evaluate(synthetic_pairs(clean_dir, "awgn:25", seed=0), classical("identity", None))
    for r in rows:
        assert r.psnr == pytest.approx(r.noisy_psnr)
        assert 19 < r.psnr < 22  # σ=25 with clipping on 8-bit
    assert summarize(rows)["images"] == 2


def test_same_seed_same_noisy_images(clean_dir):
    a = [n for _, _, n in synthetic_pairs(clean_dir, "hg:40,10", 5)]
    b = [n for _, _, n in synthetic_pairs(clean_dir, "hg:40,10", 5)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_bm3d_beats_noisy_input(clean_dir):
    pytest.importorskip("bm3d")
    rows = evaluate(synthetic_pairs(clean_dir, "awgn:25", 0, limit=1), classical("bm3d", None))
    assert rows[0].psnr > rows[0].noisy_psnr + 5


def test_eval_and_synth_cli(tmp_path, clean_dir):
    out = tmp_path / "rep"
    r = run_cli("eval", "--data", str(clean_dir), "--noise", "awgn:15", "--method", "nlm", "--out", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads(next(out.glob("*.json")).read_text())
    assert report["mean"]["psnr"] > report["mean"]["noisy_psnr"]
    assert next(out.glob("*.csv")).read_text().startswith("name,psnr,ssim")
    r = run_cli("eval", "--data", str(clean_dir), "--method", "nlm", "--ensemble", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and b"--ensemble" in r.stderr and not (tmp_path / "x").exists()
    for sub in ("s1", "s2"):
        assert run_cli("synth", str(clean_dir), "-o", str(tmp_path / sub), "--noise", "camera:3200",
                       "--seed", "4").returncode == 0
    for f in (tmp_path / "s1").iterdir():
        assert f.read_bytes() == (tmp_path / "s2" / f.name).read_bytes()
    noisy = read_image(tmp_path / "s1" / "im0.png").pixels
    assert psnr(to_255(read_image(clean_dir / "im0.png").pixels), to_255(noisy)) < 45


def test_given_pairs(tmp_path, clean_dir):
    assert run_cli("synth", str(clean_dir), "-o", str(tmp_path / "noisy"), "--noise", "awgn:10").returncode == 0
    r = run_cli("eval", "--noisy", str(tmp_path / "noisy"), "--clean", str(clean_dir), "--method", "identity",
                "--out", str(tmp_path / "rep"), "-q")
    assert r.returncode == 0 and b"PSNR" in r.stdout
