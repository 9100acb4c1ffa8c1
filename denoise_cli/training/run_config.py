"""Saved run settings across versions: every config.json a run folder holds is read through :func:`migrate`, the one
place that knows what older runs trained with, so fit, distill and resume see only the current fields.

Version 1 is every config saved before the field ``config_version`` existed; a setting such a run does not name
is filled with the value it trained with (the default of its day), not today's default.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError

CONFIG_VERSION = 3

#: Fit settings a version-1 run trained with where its config does not name them.
FIT_V1 = {"ring_skip": False, "noise_cov": "full", "phase_b": 0.4, "phase_c": 0.7, "noise_lr": 1.0,
          "likelihood": "constrained", "group_sigma_mu": False, "sigma_mu_start": "large"}
#: Fit settings a version-2 run trained with where its config does not name them: eq. 9's fusion only.
FIT_V2 = {"fusion": "bayes"}
#: Distill settings a version-1 run trained with: the paper's batch, one read of CNNest at the clean image.
DISTILL_V1 = {"noise_passes": 1, "noisy_fraction": 0.125, "lam": 0.1, "init": None, "noise_model": "cnnest"}
#: Renamed values: version 1 called the full-width D-BSN "paper".
ARCH_V1 = {"paper": "full"}


def migrate(config: dict[str, Any]) -> dict[str, Any]:
    """A saved run config in the current version's terms (the input is not changed)."""
    version = int(config.get("config_version", 1))
    if version > CONFIG_VERSION:
        raise ConfigError(f"this run was saved by a newer denoise-cli (config version {version}); upgrade to resume it")
    out = dict(config)
    if version < 2:
        stage = out.get("stage")
        out = {**(FIT_V1 if stage == "fit" else DISTILL_V1 if stage == "distill" else {}), **out}
        if stage == "fit":
            out["arch"] = ARCH_V1.get(out.get("arch", "small"), out.get("arch", "small"))
    if version < 3 and out.get("stage") == "fit":
        out = {**FIT_V2, **out}
    out["config_version"] = CONFIG_VERSION
    return out


def migrate_checkpoint(meta: dict[str, str], records: list[dict[str, Any]]) -> dict[str, str]:
    """A checkpoint's metadata with the fields older checkpoints lack: the learning rate last used (from the metrics
    log, at most one logging interval old) and the share of the budget reached (1 if the log says it finished)."""
    out = dict(meta)
    if "lr" not in out:
        lrs = [r["lr"] for r in records if "lr" in r]
        if lrs:
            out["lr"] = repr(lrs[-1])
    if "progress" not in out:
        out["progress"] = "1.0" if records and records[-1].get("final") else "0.0"
    return out
