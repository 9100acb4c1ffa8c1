"""The reference-free score: SURE matches the true error, held-out crops stay out of training, and the loop keeps the
best-scoring weights and stops when the score stops improving."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from denoise_cli.training.likelihood import bayes_fusion
from denoise_cli.training.loop import train_loop
from denoise_cli.training.runs import Budget, Run
from denoise_cli.training.self_score import ScoreLog, holdout, length_note, mc_sure, sure_fusion

from conftest import noisy_folder, run_cli, toy_training


def _spd(n: int, scale: float, g: torch.Generator) -> torch.Tensor:
    a = torch.randn(n, 3, 3, generator=g) * scale
    return a @ a.transpose(-1, -2) + torch.eye(3) * scale**2


def test_sure_of_bayes_fusion_matches_the_true_error():
    """Per-pixel correlated noise, a prior mean that does not see the pixel, and a fusion whose noise estimate reads
    the noisy pixel (as CNNest does): SURE's mean equals the true MSE."""
    g = torch.Generator().manual_seed(0)
    h = w = 128
    x = torch.rand(1, 3, h, w, generator=g)
    sigma_n = _spd(h * w, 0.05, g).view(1, h, w, 3, 3)
    sigma_mu = _spd(h * w, 0.03, g).view(1, h, w, 3, 3)
    chol_n, chol_mu = torch.linalg.cholesky(sigma_n), torch.linalg.cholesky(sigma_mu)
    noise = (chol_n @ torch.randn(1, h, w, 3, 1, generator=g)).squeeze(-1).permute(0, 3, 1, 2)
    mu = x + (chol_mu @ torch.randn(1, h, w, 3, 1, generator=g)).squeeze(-1).permute(0, 3, 1, 2)
    y = x + noise

    def reads_the_pixel(t: torch.Tensor) -> torch.Tensor:  # the fusion trusts y less where it is far from μ
        far = ((t - mu) ** 2).sum(1)[..., None, None] / 0.01
        return sigma_n * (1 + far)

    true = float(((bayes_fusion(y, mu, sigma_mu, reads_the_pixel(y)) - x) ** 2).sum(1).mean())
    estimate = float(sure_fusion(y, mu, sigma_mu, reads_the_pixel, truth=sigma_n).mean())
    assert estimate == pytest.approx(true, rel=0.05)
    # the divergence without the noise estimate's own dependence on y is far off
    fixed = reads_the_pixel(y)
    blind = float(sure_fusion(y, mu, sigma_mu, lambda t: fixed, truth=sigma_n).mean())
    assert abs(blind - true) > 0.2 * true
    # with a noise estimate that does not read the pixel and is the truth, the plain form
    plain = float(((bayes_fusion(y, mu, sigma_mu, sigma_n) - x) ** 2).sum(1).mean())
    assert float(sure_fusion(y, mu, sigma_mu, lambda t: sigma_n).mean()) == pytest.approx(plain, rel=0.05)


def test_monte_carlo_sure_matches_the_true_error_of_a_smoothing_filter():
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 256), torch.linspace(0, 1, 256), indexing="ij")
    x = (0.5 + 0.3 * torch.sin(6 * xx) * torch.cos(4 * yy)).expand(1, 3, 256, 256).contiguous()
    kernel = torch.ones(3, 1, 5, 5) / 25
    blur = torch.nn.functional.conv2d(torch.randn(1, 3, 256, 256, generator=g), kernel, padding=2, groups=3)
    noise = 0.1 * blur / blur.std()  # spatially correlated, as camera noise is
    y = x + noise

    def f(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(z, (1, 1, 1, 1), mode="reflect"), torch.ones(3, 1, 3, 3) / 9, groups=3)

    true = float(((f(y) - x) ** 2).mean())
    probe = 0.1 * torch.nn.functional.conv2d(torch.randn(1, 3, 256, 256, generator=g), kernel, padding=2, groups=3)
    probe = probe / probe.std() * 0.1
    assert mc_sure(f, y, probe) == pytest.approx(true, rel=0.1)


def test_holdout_keeps_the_scored_bands_out_of_training():
    images = [np.random.default_rng(i).random((100 + 40 * i, 90 + 100 * i, 3), dtype=np.float32) for i in range(3)]
    train, held = holdout(images, 48, align=8, share=1.0)
    assert len(train) == 3 and len(held) == 3
    for im, tr, band in zip(images, train, held):
        assert np.array_equal(tr, im[: tr.shape[0]])  # training keeps the top rows only
        assert band.shape[0] == 48 and band.shape[1] == min(im.shape[1], 4 * 48)
        x0 = (im.shape[1] - band.shape[1]) // 2 // 8 * 8
        assert np.array_equal(band, im[tr.shape[0] : tr.shape[0] + 48, x0 : x0 + band.shape[1]])
    # by default a tenth of the pixels at most, but always one band
    train, held = holdout(images, 48, align=8)
    assert len(held) == 1
    # photos too small to split: the last one is held out whole
    small = [np.zeros((40, 40, 1), np.float32), np.ones((40, 40, 1), np.float32)]
    train, held = holdout(small, 48)
    assert len(train) == 1 and np.array_equal(held[0], small[1])


def test_score_log_keeps_the_best_stops_when_stale_and_says_when_still_improving():
    log = ScoreLog(counts_from=0.3, patience=2)
    assert not log.add(0.1, 40.0)  # before counts_from: recorded, not kept
    assert log.add(0.3, 30.0) and log.add(0.4, 31.0)
    assert not log.add(0.5, 30.5) and not log.stale()
    assert not log.add(0.6, 30.9) and log.stale()
    rising = ScoreLog()
    for p, s in [(0.2, 28.0), (0.4, 29.0), (0.6, 29.5), (0.8, 29.8), (1.0, 30.1)]:
        rising.add(p, s)
    assert rising.still_improving()
    flat = ScoreLog()
    for p, s in [(0.2, 28.0), (0.4, 29.0), (0.6, 29.5), (0.8, 29.55), (1.0, 29.6)]:
        flat.add(p, s)
    assert not flat.still_improving()


def _toy(tmp_path, scores: list[float], iterations: int = 40, score_start: bool = False, counts_from: float = 0.0):
    """A linear model trained for ``iterations`` steps whose 'score' follows a script; returns (run, model, weights
    at each score)."""
    run, model, opt, x, y = toy_training(tmp_path)
    seen = []

    def score() -> float:
        seen.append(model.weight.detach().clone())
        return scores[min(len(seen), len(scores)) - 1]

    budget = Budget(iterations, None)
    train_loop(run, {"m": model}, opt, lambda _: F.mse_loss(model(x), y), budget, 0.1,
               score=score, scores=ScoreLog(counts_from=counts_from, patience=3), score_start=score_start)
    return run, model, seen, budget


def test_the_loop_keeps_the_best_scoring_weights_and_stops_when_the_score_stops_improving(tmp_path):
    run, model, seen, budget = _toy(tmp_path, [20.0, 21.0, 22.0, 21.5, 21.0, 20.0, 19.0])
    assert budget.step == 12 and budget.stopped  # 20 scores planned over 40 steps; stale 3 scores after the best
    assert torch.equal(model.weight, seen[2])  # the best-scoring weights are back in the model
    records = run.records()
    assert [r["score"] for r in records if "score" in r] == [20.0, 21.0, 22.0, 21.5, 21.0, 20.0]
    assert records[-1]["final"] and records[-1]["stopped_early"]
    assert "stopped early" in length_note(records)
    assert run.metadata()["stopped"] == "1" and run.finished()
    # running it again does not train further: it stopped on its score
    _, _, again, budget2 = _toy(tmp_path, [30.0])
    assert budget2.stopped and not again


def test_a_run_whose_score_still_rises_at_the_end_says_so(tmp_path):
    run, _, seen, budget = _toy(tmp_path, [20 + 0.2 * i for i in range(20)])
    assert budget.step == 40 and not budget.stopped and len(seen) == 20
    assert length_note(run.records()).endswith("give it more time")


def test_fit_and_distill_log_scores_and_keep_the_best_weights(gray_fit, tmp_path):
    records = Run(gray_fit).records()
    scored = [r for r in records if "score" in r]
    assert scored and all(np.isfinite(r["score"]) for r in scored)
    assert Run(gray_fit).best.exists()
    out = tmp_path / "model"
    clean = noisy_folder(tmp_path, 1)  # any images serve as the clean folder here
    r = run_cli("distill", str(clean), "--fit", str(gray_fit), "--out", str(out), "--iterations", "4", "--patch",
                "16", "--batch", "2")
    assert r.returncode == 0, r.stderr
    scored = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("score" in s for s in scored) and (out / "best.safetensors").exists()
    last = tmp_path / "last"  # --keep last: the whole budget, unscored, the final weights
    r = run_cli("distill", str(clean), "--fit", str(gray_fit), "--out", str(last), "--iterations", "4", "--patch",
                "16", "--batch", "2", "--keep", "last")
    assert r.returncode == 0, r.stderr
    logged = [json.loads(line) for line in (last / "metrics.jsonl").read_text().splitlines()]
    assert not any("score" in s for s in logged) and not (last / "best.safetensors").exists()
    assert logged[-1]["final"] and logged[-1]["step"] == 4
    assert json.loads((last / "config.json").read_text())["keep"] == "last"
    assert "--noise-model auto --keep last" in (last / "entry.toml").read_text()


def test_a_fine_tune_that_only_scores_lower_ends_on_its_start(tmp_path):
    """The trained start's score competes for best although it comes before counts_from: the run gives back its
    initial weights and stops once four counted scores bring nothing better."""
    run, model, seen, budget = _toy(tmp_path, [30.0, 25.0, 26.0, 27.0, 28.0, 28.5, 29.0, 29.5, 29.6, 29.7],
                                    score_start=True, counts_from=0.25)
    assert torch.equal(model.weight, seen[0])  # the start's weights
    records = [r for r in run.records() if "score" in r]
    assert records[0]["start"] and records[0]["step"] == 0 and records[0]["best"]
    assert budget.stopped and not any(r.get("best") for r in records[1:])


def test_against_start_says_in_words_whether_the_fine_tune_beats_its_start():
    from denoise_cli.training.self_score import against_start

    start = {"step": 0, "score": 38.0, "start": True}
    assert "better than the default" in against_start([start, {"step": 9, "score": 38.4}])
    assert "+0.40 dB" in against_start([start, {"step": 9, "score": 38.4}])
    assert "not expected to beat" in against_start([start, {"step": 9, "score": 37.9}])
    assert against_start([{"step": 9, "score": 37.9}]) is None  # no scored start: nothing to compare with
