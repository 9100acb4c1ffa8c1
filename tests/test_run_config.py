"""Saved run configs of every version read as the current one: what old runs trained with, not today's defaults."""

import json

import pytest

from denoise_cli.errors import ConfigError
from denoise_cli.training.distill import saved_distill_config
from denoise_cli.training.fit_config import saved_config
from denoise_cli.training.run_config import CONFIG_VERSION, migrate
from denoise_cli.training.runs import Run


def test_a_version_1_fit_config_gets_the_settings_it_trained_with(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"stage": "fit", "mode": "real", "channels": 3, "arch": "paper",
                                                      "noise_input": "noisy"}))  # a key since removed: ignored
    cfg = saved_config(Run(tmp_path))
    assert (cfg.arch, cfg.ring_skip, cfg.noise_cov, cfg.likelihood, cfg.sigma_mu_start) == \
        ("full", False, "full", "constrained", "large")
    assert (cfg.phase_b, cfg.phase_c, cfg.noise_lr, cfg.group_sigma_mu) == (0.4, 0.7, 1.0, False)


def test_a_version_2_fit_config_fuses_as_it_did():
    assert migrate({"stage": "fit", "mode": "real", "channels": 3, "config_version": 2})["fusion"] == "bayes"
    assert migrate({"stage": "fit", "mode": "real", "channels": 3, "config_version": 3, "fusion": "auto"})["fusion"] == "auto"
    assert "fusion" not in migrate({"stage": "distill", "fit_run": "f", "config_version": 2})


def test_a_version_1_distill_config_reads_the_noise_as_the_paper_did(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"stage": "distill", "fit_run": "f", "clean_dir": "c",
                                                      "noise_scale": [0.9, 1.1]}))
    cfg = saved_distill_config(Run(tmp_path))
    assert (cfg.noise_passes, cfg.noisy_fraction, cfg.lam, cfg.init, cfg.noise_model) == (1, 0.125, 0.1, None, "cnnest")


def test_current_configs_round_trip_and_newer_ones_are_refused(tmp_path):
    run = Run(tmp_path)
    run.write_config({"stage": "fit", "mode": "synthetic", "channels": 1, "ring_skip": True})
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["config_version"] == CONFIG_VERSION and saved_config(run).ring_skip is True
    assert migrate(saved) == saved
    with pytest.raises(ConfigError, match="newer"):
        migrate({**saved, "config_version": CONFIG_VERSION + 1})
