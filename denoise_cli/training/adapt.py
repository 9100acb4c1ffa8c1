"""`adapt`: both stages for one camera in one call — `fit` on its noisy photos, then `distill` — within one budget."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..progress import SILENT, Reporter
from .runs import Budget, Run
from .distill import DistillConfig, distill, saved_distill_config
from .fit import fit
from ..errors import ConfigError

FIT_SHARE = 0.6  # of the budget for fit's training; distill gets the rest of the wall time
MIN_DISTILL_SHARE = 0.2

@dataclass(frozen=True)
class Recipe:
    """What distill trains on in an adapt run, and the share of the budget fit trains for first."""

    fit_share: float
    distill: dict


#: By name: "photos", the photos with their stage-1 results (the default for colour photos, see distill.REAL_MODE);
#: "camera", unrelated clean photos rendered by the camera pipeline fit calibrates to the photos, σ × U(0.7, 1.4) per
#: patch, for the whole budget (no self-score: its probe would be the same noise model). The camera needs little of
#: fit (its calibration, not a long stage 1), so fit gets a smaller share.
RECIPES: dict[str, Recipe] = {
    "photos": Recipe(FIT_SHARE, {}),
    "camera": Recipe(0.15, {"noise_model": "pipeline", "noisy_fraction": 0.0, "noise_scale": (0.7, 1.4),
                            "keep": "last"}),
}


def find_recipe(name: str) -> Recipe:
    """The recipe of this name; ConfigError for an unknown one."""
    if name not in RECIPES:
        raise ConfigError(f"unknown adapt recipe {name!r}: expected one of {', '.join(RECIPES)}")
    return RECIPES[name]


@dataclass
class Adapted:
    """What an adapt run made: the fit's noise report, the model file and each stage's budget (steps taken)."""

    report: dict
    model: Path
    fit_budget: Budget
    distill_budget: Budget


def finished(run: str | Path, seconds: float, fit_share: float = FIT_SHARE) -> bool:
    """Whether an adapt run has nothing left to do within ``seconds``: both stages stopped on their score or used
    their share of this budget, and the model exists. A larger budget than before is not finished (it continues)."""
    fit_run, model_run = Run(run), Run(Path(run) / "model")
    if not (fit_run.exists() and model_run.exists() and (model_run.path / "model.safetensors").exists()):
        return False

    def used(r: Run, share: float) -> bool:
        meta = r.metadata()
        return meta.get("stopped") == "1" or (float(meta.get("progress", 0)) >= 1
                                              and float(meta.get("elapsed", 0)) >= 0.99 * seconds * share)

    return used(fit_run, fit_share) and used(model_run, MIN_DISTILL_SHARE)


def adapt(noisy_dir: str | Path, clean_dirs: list[str | Path], run: str | Path, seconds: float, device: torch.device,
          *, precision: str = "fp32", fit_share: float | None = None, recipe: str = "photos",
          reporter: Reporter = SILENT) -> Adapted:
    """Fit in RUN, then distill into RUN/model, within ``seconds`` of wall time: fit trains for ``fit_share`` of it
    (None: the recipe's), and distill (on what ``recipe`` names, see RECIPES) gets what is left after fit has also
    denoised the photos and estimated the noise (at least MIN_DISTILL_SHARE). A stage that has a checkpoint already is
    resumed with its own saved settings, so an interrupted adapt continues where it stopped, within the same budget."""
    chosen = find_recipe(recipe)
    fit_share = chosen.fit_share if fit_share is None else fit_share
    fit_run, model_run = Run(run), Run(Path(run) / "model")
    fit_budget = Budget(None, seconds * fit_share)
    fitted = fit(noisy_dir, fit_run, None, fit_budget, device, reporter=reporter)
    if model_run.exists():
        dcfg = saved_distill_config(model_run, fit_run=fit_run.path, clean_dir=[Path(d) for d in clean_dirs])
    else:
        dcfg = DistillConfig(fit_run=str(fit_run.path), clean_dir=[Path(d) for d in clean_dirs], **chosen.distill)
    # fit's budget counts its training in earlier sessions and everything since it resumed in this one (denoising the
    # photos, estimating the noise): a resumed adapt leaves distill what is left of the one budget, not all of it
    distill_budget = Budget(None, max(seconds - fit_budget.elapsed, seconds * MIN_DISTILL_SHARE))
    model = distill(dcfg, model_run, distill_budget, device, reporter=reporter, precision=precision,
                    fit=fitted)
    return Adapted(fitted.report, model, fit_budget, distill_budget)
