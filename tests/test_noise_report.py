"""The noise report: σ on the fit's own images binned by x̂, per Bayer group in real mode, and its plot."""

import numpy as np
import torch
from pytest import approx

from denoise_cli.noise.cnnest import NoiseModel
from denoise_cli.noise.report import MIN_PIXELS, build_report, group_map, images_sigma, mid_gray, plot
from denoise_cli.training.pixel_shuffle import bayer_groups, pd_down


def flat_model(channels: int, groups: int, sigmas: list[float]) -> NoiseModel:
    """A noise model whose σ (0–255) is constant per group."""
    model = NoiseModel(channels, groups, diagonal=True)
    for net, s in zip(model.nets, sigmas):
        single = NoiseModel(channels, 1, diagonal=True)
        single.init_sigma(s)
        net.load_state_dict(single.nets[0].state_dict())
    return model


def test_group_map_matches_the_pixel_shuffle_layout():
    h, w = 8, 12
    gmap = torch.from_numpy(group_map(h, w, 4)).float()[None, None]
    subs = pd_down(gmap)  # each sub-image holds the group of the pixels it came from
    for sub, g in zip(subs, bayer_groups(1)):
        assert (sub == g).all()
    assert (group_map(h, w, 1) == 0).all()


def test_sigma_is_binned_by_the_estimate_not_the_noisy_value():
    rng = np.random.default_rng(0)
    y = rng.random((40, 40, 3)).astype(np.float32)
    x_hat = np.full_like(y, 0.5)
    acc = images_sigma(flat_model(3, 1, [20.0]), [(y, x_hat)] * 2)
    assert acc.counts.sum() == 2 * y.size
    curves = acc.curves()[0]
    for ch in curves:
        assert ch[10] == approx(20.0, abs=0.05)
        assert all(v is None for i, v in enumerate(ch) if i != 10)


def test_each_bayer_group_reads_its_own_noise_model():
    y = np.full((64, 64, 3), 0.3, dtype=np.float32)
    model = flat_model(3, 4, [5.0, 10.0, 15.0, 20.0])
    acc = images_sigma(model, [(y, y)])
    assert (acc.counts[:, :, 6] == 64 * 64 // 4).all()  # 0.3 → level 6 of 0, 0.05, …
    for g, expect in enumerate([5.0, 10.0, 15.0, 20.0]):
        assert all(ch[6] == approx(expect, abs=0.05) for ch in acc.curves()[g])


def test_bins_below_the_pixel_floor_are_left_empty_and_the_plot_copes(tmp_path):
    y = np.full((10, 10, 1), 0.5, dtype=np.float32)
    assert y.size < MIN_PIXELS
    model = flat_model(1, 1, [12.0])
    report = build_report(model, torch.device("cpu"), images_sigma(model, [(y, y)]))
    assert report["sigma_on_images"]["all"][0] == [None] * 21
    assert report["pixels_on_images"]["all"][0][10] == 100
    assert report["sigma"]["all"][0][0] == approx(12.0, abs=0.05)
    plot(report, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0



def test_mid_gray_prefers_the_reading_on_the_images_and_falls_back_to_flat_gray():
    levels = [0.0, 0.5, 1.0]
    report = {"levels": levels, "sigma": {"all": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]},
              "sigma_on_images": {"all": [[None, 9.0, None], [None, None, None]]}}
    assert mid_gray(report) == {"all": [9.0, 5.0]}  # channel 1 has too few mid-gray pixels on the images
    del report["sigma_on_images"]
    assert mid_gray(report) == {"all": [2.0, 5.0]}  # older runs: flat gray only


def test_mid_gray_reads_the_model_distill_draws_from_when_there_is_one(tmp_path):
    levels = [0.0, 0.5, 1.0]
    report = {"levels": levels, "channels": 3, "sigma": {"g0": [[1.0, 2.0, 3.0]] * 3},
              "sigma_on_images": {"g0": [[None, 9.0, None]] * 3},
              "correlated": {"levels": [0.0, 0.4, 0.6, 1.0], "sigma": {"g0": [[2.0, 4.0, 6.0, 8.0], [1.0, None, 3.0, 4.0],
                                                                               [5.0, 5.0, 5.0, 5.0]]},
                             "correlations": {"horizontal": [[1.0, 0.5, 0.2]] * 3, "vertical": [[1.0, 0.4, 0.1]] * 3,
                                              "channels": [[1.0, 0.6, 0.5], [0.6, 1.0, 0.6], [0.5, 0.6, 1.0]]}}}
    assert mid_gray(report) == {"g0": [5.0, 2.67, 5.0]}  # the curve the report draws boldest, at 0.5 (interpolated)
    plot(report, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0
