"""Train a blind colour default on camera noise drawn from a prior over camera pipelines (noise.prior).

Each training patch is a clean photo crop put through a camera drawn from the prior (sensor noise at the Bayer site,
demosaicking, colour, tone, in-camera noise reduction, 8-bit, JPEG; noise.pipeline); the target is the clean crop.
Resumable, and meant to run for hours in stretches: rerunning the same command continues, and a larger
``--time-budget`` continues a finished stretch with a warm restart of the learning rate (training.loop).

    nice -n 19 python -m denoise_cli.training.pipeline_default ../shared/data/train/color-photos \\
        --run runs/pipeline-default --time-budget 2h --threads 1 --export ship/color-camera-small.safetensors
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from ..io import read_rgb_folder
from ..models.mwcnn import ARCHS, MULTIPLE, build_mwcnn
from ..noise.pipeline import render
from ..noise.prior import DEFAULT_PRIOR
from ..registry.checkpoint import load_model, save_model
from .loop import train_loop
from .patches import ImagePool, random_patches
from .runs import Budget, Run, parse_duration


def clean_pool(folders: list[str], scales: tuple[int, ...] = (2,)) -> ImagePool:
    """The clean photos of each folder and their copies downscaled by each of ``scales`` (downscaling averages away
    the photos' own noise and JPEG traces, and packs more detail into each pixel), each folder drawn from equally
    often."""
    sets = []
    for folder in folders:
        images = read_rgb_folder(folder, 3)
        smaller = [cv2.resize(im, (im.shape[1] // k, im.shape[0] // k), interpolation=cv2.INTER_AREA)
                   for k in scales for im in images if min(im.shape[:2]) >= 128 * k]
        sets.append(images + smaller)
    return ImagePool.from_folders(sets)


def camera_batch(clean: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Each clean patch (N,3,H,W) as a camera drawn from the prior would have saved it."""
    out = [render(x.permute(1, 2, 0).numpy(), DEFAULT_PRIOR.sample(rng), rng) for x in clean]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clean_dir", nargs="+")
    ap.add_argument("--run", required=True)
    ap.add_argument("--arch", default="small", choices=sorted(ARCHS))
    ap.add_argument("--init", default=None, help="start from these weights (a registry name or .safetensors file)")
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--time-budget", required=True)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export", default=None, help="write the final fp16 weights here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    pool = clean_pool(args.clean_dir)
    run = Run(args.run)
    if run.exists():
        model = build_mwcnn(3, args.arch)
    elif args.init:
        from ..registry.weights import resolve

        model = load_model(resolve(args.init))
    else:
        model = build_mwcnn(3, args.arch)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, elapsed = run.load({"model": model}, opt) if run.exists() else (0, 0.0)
    run.write_config({k: v for k, v in vars(args).items() if k != "export"} | {"prior": repr(DEFAULT_PRIOR)})
    budget = Budget(None, parse_duration(args.time_budget), step, elapsed)
    rng = np.random.default_rng([args.seed, step])
    patch = args.patch // MULTIPLE * MULTIPLE

    def step_loss(_: int) -> torch.Tensor:
        clean = random_patches(pool, patch, args.batch, rng)
        noisy = camera_batch(clean, rng)
        return torch.nn.functional.mse_loss(model(noisy), clean)

    train_loop(run, {"model": model}, opt, step_loss, budget, args.lr, description="camera prior",
               start_lr=args.lr / 10 if args.init and step == 0 else None)
    if args.export:
        save_model(model.eval(), args.export, half=True, trained_by="camera-pipeline prior",
                   noise="camera pipelines drawn from noise.prior")


if __name__ == "__main__":
    main()
