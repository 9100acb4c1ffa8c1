"""Make an oracle copy of a fit run whose noise model is the true, constant AWGN σ (a control).

    python benchmarks/oracle_noise.py runs/fit_quality/cbsd68-awgn25-small-diag runs/oracle/awgn25 --sigma 25
    denoise-cli distill ../shared/data/train/color-photos --fit runs/oracle/awgn25 --time-budget 20m \\
        --noise-scale 0:2 --stage1-weight 0

Distilling from the copy shows what `distill` reaches with a perfect noise model on the same
budget, so the learned model's cost can be told apart from the cost of short training. The copy
keeps the run's D-BSN and config; its diagonal CNNest outputs exactly σ everywhere, and it has no
stage-1 images (use --stage1-weight 0).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from denoise_cli.models.noise_model import NoiseModel
from denoise_cli.runs import Run
from denoise_cli.stages.fit import saved_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fit_run", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--sigma", type=float, required=True, help="true noise σ on 0–255")
    args = ap.parse_args()
    cfg = saved_config(Run(args.fit_run))
    if cfg.noise_cov != "diagonal":
        raise SystemExit(f"{args.fit_run}: needs a diagonal-Σn fit run")
    args.dest.mkdir(parents=True, exist_ok=False)
    for name in ("config.json", "noise_model.safetensors"):
        shutil.copy(args.fit_run / name, args.dest / name)
    torch.manual_seed(0)
    oracle = NoiseModel(cfg.channels, cfg.groups, diagonal=True)
    oracle.init_sigma(args.sigma)
    with torch.no_grad():
        for net in oracle.nets:
            net[-1].weight.zero_()  # no dependence on the input: exactly σ everywhere
    src = args.fit_run / "checkpoint.safetensors"
    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(src))
    tensors.update({f"noise.{k}": v for k, v in oracle.state_dict().items()})
    save_file(tensors, str(args.dest / "checkpoint.safetensors"), metadata=meta)
    print(f"{args.dest}: σ = {oracle.sigma_curve(torch.tensor([0.0, 0.5, 1.0]))[:, 0].tolist()}")


if __name__ == "__main__":
    main()
