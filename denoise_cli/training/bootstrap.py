"""Supervised bootstrap: MWCNN trained on clean photos with synthetic blind Gaussian noise.

This made the first embedded default before unpaired checkpoints existed; it is kept so the
entry in weights.toml can be reproduced exactly:

    python -m denoise_cli.training.bootstrap ../shared/data/train/color-photos --run runs/bootstrap \
        --time-budget 25m --export denoise_cli/weights/color-bootstrap-small.safetensors
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ..registry.checkpoint import save_model
from ..io import read_rgb_folder
from ..models.mwcnn import build_mwcnn
from .patches import random_patches
from .runs import Budget, Run, parse_duration
from .loop import train_loop


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clean_dir")
    ap.add_argument("--run", required=True)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--arch", default="small")
    ap.add_argument("--sigma-max", type=float, default=50.0)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--time-budget", default=None)
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export", default=None, help="write the final fp16 weights here")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    images = read_rgb_folder(args.clean_dir, args.channels)
    model = build_mwcnn(args.channels, args.arch)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    run = Run(args.run)
    step, elapsed = run.load({"model": model}, opt) if run.exists() else (0, 0.0)
    run.write_config(vars(args))
    seconds = parse_duration(args.time_budget) if args.time_budget else None
    budget = Budget(args.iterations, seconds, step, elapsed)
    rng = np.random.default_rng([args.seed, step])

    def step_loss(_: int) -> torch.Tensor:
        clean = random_patches(images, args.patch, args.batch, rng)
        sigma = torch.rand(clean.shape[0], 1, 1, 1) * args.sigma_max / 255
        noisy = torch.round((clean + torch.randn_like(clean) * sigma).clamp(0, 1) * 255) / 255
        return torch.nn.functional.mse_loss(model(noisy), clean)

    train_loop(run, {"model": model}, opt, step_loss, budget, args.lr, description="bootstrap")
    if args.export:
        save_model(model.eval(), args.export, half=True, trained_by="supervised bootstrap",
                   noise=f"awgn:0-{args.sigma_max:g}")


if __name__ == "__main__":
    main()
