"""Make an oracle copy of a fit run whose noise model is the true, constant AWGN σ (a control).

    python benchmarks/oracle_noise.py runs/fit_quality/cbsd68-awgn25-small-diag runs/oracle/awgn25 --sigma 25
    denoise-cli distill ../shared/data/train/color-photos --fit runs/oracle/awgn25 --time-budget 20m \\
        --noise-scale 0:2 --stage1-weight 0

Distilling from the copy shows what `distill` reaches with a perfect noise model on the same
budget, so the learned model's cost can be told apart from the cost of short training. The copy
keeps the run's D-BSN and config; its diagonal CNNest (checkpoint and noise_model.safetensors)
outputs exactly σ everywhere, and it has no stage-1 images (use --stage1-weight 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from denoise_cli.training.runs import Run
from denoise_cli.training.fit import Stage1, save_noise_model, saved_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fit_run", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--sigma", type=float, required=True, help="true noise σ on 0–255")
    args = ap.parse_args()
    src, dest = Run(args.fit_run), Run(args.dest)
    if dest.path.exists():
        raise SystemExit(f"{dest.path} exists")
    stage = Stage1(saved_config(src), torch.device("cpu"))
    step, elapsed = src.load(stage.modules, None)
    if not stage.noise.diagonal:
        raise SystemExit(f"{src.path}: needs a diagonal-Σn fit run")
    stage.noise.init_sigma(args.sigma)
    with torch.no_grad():
        for net in stage.noise.nets:
            net[-1].weight.zero_()  # no dependence on the input: exactly σ everywhere
    dest.write_config(src.read_config())
    dest.save(stage.modules, None, step, elapsed)
    save_noise_model(stage, dest.path / "noise_model.safetensors")
    print(f"{dest.path}: σ = {stage.noise.sigma_curve(torch.tensor([0.0, 0.5, 1.0]))[:, 0].tolist()}")


if __name__ == "__main__":
    main()
