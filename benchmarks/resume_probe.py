"""What resuming a finished distill run with a larger budget does to the loss, cold jump vs lr ramp.

    python benchmarks/resume_probe.py runs/unpaired/cbsd68-awgn25-small-diag --extend-to 35m

Loads the run's final weights and Adam state, then trains a copy for a few hundred steps at the lr
the extended cosine asks for: once jumping there at once (the behaviour before the fix), once through
`training.rewarm_lr` (what `--resume` does now). The run itself is not touched. Prints the raw loss
per block of steps and writes benchmarks/results/resume_probe.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, hardware  # noqa: E402
from denoise_cli.inference.devices import pick_device  # noqa: E402
from denoise_cli.models.mwcnn import build_mwcnn  # noqa: E402
from denoise_cli.training.runs import Run, parse_duration  # noqa: E402
from denoise_cli.training.distill import DistillConfig, load_fit, make_step_loss, saved_distill_config, training_data  # noqa: E402
from denoise_cli.training.loop import REWARM_STEPS, cosine_lr, rewarm_lr  # noqa: E402


def probe(run: Run, cfg: DistillConfig, target_lr: float, ramp: bool, steps: int, device: torch.device,
          data: tuple) -> list[float]:
    """Raw per-step losses of `steps` steps from the run's final state at `target_lr` (ramped or not)."""
    stage, clean, pairs = data
    model = build_mwcnn(stage.cfg.channels, cfg.arch).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    run.load({"model": model}, opt)
    saved = run.last_lr()
    model.train()
    rng = np.random.default_rng([cfg.seed, 12345])
    torch.manual_seed(cfg.seed)
    step_loss = make_step_loss(cfg, stage, model, clean, pairs, rng, device)
    losses = []
    for k in range(steps):
        lr = rewarm_lr(saved, target_lr, k) if ramp else target_lr
        for group in opt.param_groups:
            group["lr"] = lr
        loss = step_loss(k)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished distill run (OUT of denoise-cli distill)")
    ap.add_argument("--extend-to", default="35m", help="the larger time budget a user would resume with")
    ap.add_argument("--steps", type=int, default=REWARM_STEPS + 100)
    ap.add_argument("--block", type=int, default=25)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = pick_device(args.device)
    run = Run(args.run)
    cfg = saved_distill_config(run)
    elapsed = float(run.metadata()["elapsed"])
    target = cosine_lr(cfg.lr, elapsed / parse_duration(args.extend_to))
    stage = load_fit(cfg, device)
    data = (stage, *training_data(cfg, stage))
    rows = []
    for ramp in (False, True):
        losses = probe(run, cfg, target, ramp, args.steps, device, data)
        blocks = [float(np.mean(losses[i:i + args.block])) for i in range(0, len(losses), args.block)]
        rows.append({"resume": "lr ramp" if ramp else "cold jump", "first_loss": losses[0], "peak": max(losses),
                     "blocks": blocks, "final_block": blocks[-1]})
    record = {"run": str(args.run), "trained_min": elapsed / 60, "extend_to": args.extend_to, "target_lr": target,
              "ramp_steps": REWARM_STEPS, "steps": args.steps, "block": args.block, "hardware": hardware(device),
              "rows": rows}
    lines = [f"Resuming {args.run} ({elapsed / 60:.0f} min) with --time-budget {args.extend_to}: lr → {target:.2e}. "
             f"Raw training loss over {args.steps} steps from the saved weights and Adam state ({hardware(device)}).", "",
             f"| resume | first step | peak | mean per {args.block} steps |", "|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['resume']} | {r['first_loss']:.4f} | {r['peak']:.4f} | "
                     + " ".join(f"{b:.4f}" for b in r["blocks"]) + " |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "resume_probe.json").write_text(json.dumps(record, indent=2))
    (RESULTS / "resume_probe.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
