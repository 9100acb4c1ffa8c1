"""Train the blind RAW default: an MWCNN on four Bayer planes guided by the per-pixel noise level, on clean photos
taken back to sensor data with noise drawn from a prior over sensors (noise.sensor).

Each training patch is a clean photo crop unprocessed to a camera's canonical Bayer planes (inverse tone curve,
colour matrix, white balance and exposure; a random layout), given Poisson–Gaussian noise (a, b) drawn from the
prior; the network reads the noisy planes and the noise σ the (a, b) give at each pixel — or, for half the patches,
guide planes of zeros, so that the same network also denoises blind where a file's (a, b) are not known (a single small
photo says too little about its own noise for a reliable estimate). The loss is taken on a gamma-encoded scale, as
the developed photo shows errors. Resumable like the colour default's training:

    nice -n 19 python -m denoise_cli.training.raw_default ../shared/data/train/color-photos \\
        --run runs/raw-default --time-budget 90m --threads 1 --export denoise_cli/weights/raw-bayer-small.safetensors
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.mwcnn import MULTIPLE, MWCNN, build_mwcnn
from ..noise.sensor import DEFAULT_SENSOR_PRIOR, SensorNoise, SensorPrior, add_noise, noise_guides
from ..registry.checkpoint import save_model
from .loop import train_loop
from .patches import random_patches
from .pipeline_default import clean_pool
from .prior_training import prior_trainer_parser, seed, start_or_resume

GUIDES = 4
P_BLIND = 0.5  # share of training patches whose guides are zeros: the blind mode
SCALES = (2, 4)  # downscaled copies of the clean photos: a Bayer plane has half the resolution, so finer detail


def gamma(x: torch.Tensor) -> torch.Tensor:
    """Linear sensor values on roughly the scale a developed photo shows them (errors in the shadows count more)."""
    return (x.clamp_min(0) + 1e-3) ** (1 / 2.2)


def raw_inputs(noisy: torch.Tensor, noise: list[SensorNoise | None]) -> torch.Tensor:
    """(N,4,H,W) noisy planes → the model's input, the planes and their noise-σ guides (N,8,H,W); zeros as the
    guides of a patch whose noise is None (blind)."""
    a = torch.tensor([n.a if n else (0.0,) * 4 for n in noise], dtype=noisy.dtype)
    b = torch.tensor([n.b if n else (0.0,) * 4 for n in noise], dtype=noisy.dtype)
    return torch.cat([noisy, noise_guides(noisy, a, b)], 1)


def sensor_batch(clean_srgb: torch.Tensor, rng: np.random.Generator, prior: SensorPrior = DEFAULT_SENSOR_PRIOR,
                 fixed: list[SensorNoise] | None = None, blind: float = P_BLIND) -> tuple[torch.Tensor, torch.Tensor]:
    """(model input N,8,H/2,W/2; clean planes N,4,H/2,W/2) from clean sRGB patches (N,3,H,W), noise drawn from the
    prior, or from ``fixed`` (one of them per patch, e.g. what ``fit`` learned of a camera); a ``blind`` share of
    the patches come without guides."""
    clean, noisy, noises = [], [], []
    for x in clean_srgb:
        planes = prior.unprocess(x.permute(1, 2, 0).numpy(), rng)
        noise = fixed[int(rng.integers(len(fixed)))] if fixed else prior.sample_noise(rng)
        clean.append(planes)
        noisy.append(add_noise(planes, noise, rng))
        noises.append(None if blind and rng.random() < blind else noise)
    to_t = lambda xs: torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return raw_inputs(to_t(noisy), noises), to_t(clean)


def raw_loss(model: MWCNN, inputs: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(gamma(model(inputs)), gamma(clean))


def main(argv: list[str] | None = None) -> None:
    args = prior_trainer_parser(__doc__, patch=128, lr=1e-3).parse_args(argv)
    seed(args)
    pool = clean_pool(args.clean_dir, SCALES)
    model = build_mwcnn(4, args.arch, guides=GUIDES)
    run, opt, budget, rng = start_or_resume(args, model, DEFAULT_SENSOR_PRIOR)
    patch = args.patch // (2 * MULTIPLE) * 2 * MULTIPLE

    def step_loss(_: int) -> torch.Tensor:
        inputs, clean = sensor_batch(random_patches(pool, patch, args.batch, rng, align=2), rng)
        return raw_loss(model, inputs, clean)

    train_loop(run, {"model": model}, opt, step_loss, budget, args.lr, description="sensor prior")
    if args.export:
        save_model(model.eval(), args.export, half=True, trained_by="sensor-noise prior",
                   noise="Poisson-Gaussian sensor noise drawn from noise.sensor.DEFAULT_SENSOR_PRIOR")


if __name__ == "__main__":
    main()
