"""benchmarks/fit_quality.py: the σ the saved noisy inputs really carry, which the learned σ is judged against."""


import numpy as np

from benchmarks.fit_quality import effective_sigma, max_rel_err_mid, true_sigma

from denoise_cli.noise.synthetic import add_noise, quantize


def test_effective_sigma_matches_the_noise_the_package_synthesises_and_saves():
    """Flat images at each level, noised and quantised as `synth` does: their error's RMS is effective_sigma."""
    levels = np.array([0.05, 0.2, 0.5, 0.8, 0.95])
    rng = np.random.default_rng(0)
    for spec in ("awgn:25", "hg:40,10"):
        measured = [np.sqrt(np.mean((quantize(add_noise(np.full((600, 600), x), spec, rng)) - x) ** 2)) * 255
                    for x in levels]
        assert np.allclose(measured, effective_sigma(spec, levels), rtol=0.01)


def test_clipping_removes_noise_only_near_black_and_white():
    levels = np.linspace(0, 1, 21)
    eff, spec = effective_sigma("hg:40,10", levels), true_sigma("hg:40,10", levels)
    assert abs(eff[10] - spec[10]) < 0.05  # mid-gray: untouched (8-bit rounding adds ~0.3 % of variance)
    assert eff[16] < 0.95 * spec[16]  # x = 0.8: 34.5 against 37.1
    assert abs(eff[0] - spec[0] / 2**0.5) < 0.1  # black: the negative half is clipped away, σ/√2 remains


def test_max_rel_err_is_taken_over_the_mid_range_only():
    levels = np.linspace(0, 1, 21)
    learned = np.full(21, 25.0)
    learned[0] = learned[-1] = 100.0  # far off outside [0.2, 0.8]: ignored
    learned[12] = 27.5  # x = 0.6: 10 % high
    assert abs(max_rel_err_mid(levels, learned, np.full(21, 25.0)) - 0.10) < 1e-9
    learned[16] = 30.0  # x = 0.8, stored as float32 (0.80000001) as noise reports are: still inside
    stored = levels.astype(np.float32).astype(float)
    assert abs(max_rel_err_mid(stored, learned, np.full(21, 25.0)) - 0.20) < 1e-9


def test_merge_rows_replaces_matching_rows_and_keeps_the_rest(tmp_path):
    """Benchmarks re-measure some rows; the earlier report's others stay, on a field or a compound key."""
    import json

    from benchmarks.common import merge_rows

    path = tmp_path / "r.json"
    assert merge_rows(path, [{"case": "a", "v": 1}]) == [{"case": "a", "v": 1}]  # no earlier report
    path.write_text(json.dumps({"rows": [{"case": "a", "v": 0}, {"case": "b", "v": 0}]}))
    assert merge_rows(path, [{"case": "a", "v": 1}]) == [{"case": "b", "v": 0}, {"case": "a", "v": 1}]
    path.write_text(json.dumps({"rows": [{"m": "x", "case": "a", "v": 0}, {"m": "y", "case": "a", "v": 0}]}))
    merged = merge_rows(path, [{"m": "y", "case": "a", "v": 1}], key=lambda r: (r["m"], r["case"]))
    assert merged == [{"m": "x", "case": "a", "v": 0}, {"m": "y", "case": "a", "v": 1}]


def test_sigma_on_noisy_of_a_constant_noise_model_is_that_sigma():
    """A CNNest that ignores its input predicts its σ on noisy pixels too, gray or colour."""
    import torch

    from benchmarks.fit_quality import sigma_on_noisy

    from denoise_cli.noise.cnnest import NoiseModel

    for channels in (1, 3):
        net = NoiseModel(channels, 1, diagonal=True)
        net.init_sigma(25.0)
        with torch.no_grad():
            net.nets[0][-1].weight.zero_()
        levels = np.array([0.2, 0.5, 0.8])
        assert np.allclose(sigma_on_noisy(net, "hg:40,10", levels, samples=256), 25.0, atol=0.01)


def test_sigma_on_noisy_averages_the_model_over_the_noisy_values():
    """A gray CNNest whose σ grows with y: on noisy inputs its σ is the RMS of σ(y) over y ~ x + noise, which the
    noiseless y = x of the report misses where σ(y) curves (here σ(y) = 100·|y − 0.5|: 0 at y = 0.5, not on noisy y)."""
    import torch

    from benchmarks.fit_quality import sigma_on_noisy

    class VShaped(torch.nn.Module):
        channels = 1

        def forward(self, y, group):  # Cholesky factor (N,H,W,1,1) = σ(y) on the 0–1 scale
            return (100 / 255 * (y - 0.5).abs()).permute(0, 2, 3, 1)[..., None]

    got = sigma_on_noisy(VShaped(), "awgn:25", np.array([0.5]), samples=20000)[0]
    assert abs(got - 25 * 100 / 255) < 0.5  # E[(100·n)²]^½ with n ~ N(0, 25/255): σ(y) RMS = 100·25/255 ≈ 9.8
