"""Train a blind colour default on camera noise drawn from a prior over camera pipelines (noise.prior).

Each training patch is a clean photo crop put through a camera drawn from the prior (sensor noise at the Bayer site,
demosaicking, colour, tone, in-camera noise reduction, 8-bit, JPEG; noise.pipeline); the target is the clean crop.
Resumable, and meant to run for hours in stretches: rerunning the same command continues, and a larger
``--time-budget`` continues a finished stretch with a warm restart of the learning rate (training.loop).

    nice -n 19 python -m denoise_cli.training.pipeline_default ../shared/data/train/color-photos \\
        --run runs/pipeline-default --time-budget 2h --threads 1 --export ship/color-camera-small.safetensors
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch

from ..io import read_rgb_folder
from ..models.mwcnn import MULTIPLE, build_mwcnn
from ..noise.pipeline import CameraPipeline, render
from ..noise.prior import DEFAULT_PRIOR
from ..registry.checkpoint import load_model, save_model
from .loop import train_loop
from .patches import ImagePool, random_patches
from .prior_training import prior_trainer_parser, seed, start_or_resume
from .runs import Run


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


def render_batch(clean: torch.Tensor, camera: Callable[[int], CameraPipeline], rng: np.random.Generator
                 ) -> torch.Tensor:
    """Each clean patch i (N,3,H,W) as ``camera(i)`` would have saved it (noise, 8 bits, JPEG), on the CPU in float32;
    each camera is asked for just before its patch is rendered."""
    out = [render(x.permute(1, 2, 0).numpy(), camera(i), rng) for i, x in enumerate(clean.cpu())]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def camera_batch(clean: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Each clean patch (N,3,H,W) as a camera drawn from the prior would have saved it."""
    return render_batch(clean, lambda _: DEFAULT_PRIOR.sample(rng), rng)


def main(argv: list[str] | None = None) -> None:
    ap = prior_trainer_parser(__doc__, patch=96, lr=5e-4)
    ap.add_argument("--init", default=None, help="start from these weights (a registry name or .safetensors file)")
    args = ap.parse_args(argv)
    seed(args)
    pool = clean_pool(args.clean_dir)
    if args.init and not Run(args.run).exists():
        from ..registry.weights import resolve

        model = load_model(resolve(args.init))
    else:
        model = build_mwcnn(3, args.arch)
    run, opt, budget, rng = start_or_resume(args, model, DEFAULT_PRIOR)
    step = budget.step
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
