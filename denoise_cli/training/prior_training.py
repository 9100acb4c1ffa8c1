"""The command line and run handling the trainers of shipped defaults share (pipeline_default, raw_default): each
trains one MWCNN on clean photos with noise drawn from a prior, resumable, for a wall-time budget."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ..models.mwcnn import ARCHS
from .runs import Budget, Run, parse_duration


def prior_trainer_parser(doc: str, *, patch: int, lr: float) -> argparse.ArgumentParser:
    """The options every prior trainer takes (its module docstring's first line as the description)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("clean_dir", nargs="+")
    ap.add_argument("--run", required=True)
    ap.add_argument("--arch", default="small", choices=sorted(ARCHS))
    ap.add_argument("--patch", type=int, default=patch)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--time-budget", required=True)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export", default=None, help="write the final fp16 weights here")
    return ap


def seed(args: argparse.Namespace) -> None:
    """Threads and the seed, before the network is built (its initial weights follow the seed)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)


def start_or_resume(args: argparse.Namespace, model: torch.nn.Module, prior: object
                    ) -> tuple[Run, torch.optim.Optimizer, Budget, np.random.Generator]:
    """The run folder (continued where it holds a checkpoint), its optimizer, budget and patch generator; the
    settings and the prior are written to its config."""
    run = Run(args.run)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, elapsed = run.load({"model": model}, opt) if run.exists() else (0, 0.0)
    run.write_config({k: v for k, v in vars(args).items() if k != "export"} | {"prior": repr(prior)})
    return run, opt, Budget(None, parse_duration(args.time_budget), step, elapsed), np.random.default_rng([args.seed, step])
