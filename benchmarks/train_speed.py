"""How fast `distill` trains: steps per second of the real distill step per MWCNN arch and precision.

    python -m benchmarks.train_speed --name train_speed-h200 --patches 96 128   # a GPU machine
    python -m benchmarks.train_speed --device cpu --archs small --seconds 5     # a dry run

Each row times `make_step_loss` (patch sampling, noise synthesis from an untrained noise model, 1/8 of
the batch from stage-1 pairs as in distill, forward, backward, Adam) for a fixed time after a warm-up,
so the figure is what a distill run gets, data pipeline included. bf16 rows only where the device
trains in bf16. Writes benchmarks/results/NAME.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from .speed import machine
from denoise_cli.inference.devices import pick_device
from denoise_cli.models.mwcnn import ARCHS, build_mwcnn
from denoise_cli.training.distill import DistillConfig, check_precision, make_step_loss
from denoise_cli.training.fit import FitConfig, Stage1

OUT = Path(__file__).resolve().parent / "results"


def sync(device: torch.device) -> None:
    """Wait for the GPU, so that the timer measures finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def steps_per_second(arch: str, precision: str, patch: int, args: argparse.Namespace, device: torch.device) -> dict:
    """Train for args.seconds after args.warmup steps; return the rate and the peak GPU memory."""
    stage = Stage1(FitConfig(mode="synthetic", channels=args.channels), device)
    model = build_mwcnn(args.channels, arch).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    cfg = DistillConfig(fit_run="-", clean_dir="-", arch=arch, patch=patch, batch=args.batch)
    cfg.resolve("synthetic", args.channels)  # the paper's batch: 1/8 from the photos
    rng = np.random.default_rng(0)
    clean = [rng.random((256, 256, args.channels), dtype=np.float32) for _ in range(8)]
    pairs = [rng.random((256, 256, 2 * args.channels), dtype=np.float32) for _ in range(4)]  # photo | stage 1
    step_loss = make_step_loss(cfg, stage, model, clean, pairs, rng, device, precision)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        step_loss(0).backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        step()
        n += 1
        if n % 10 == 0:
            sync(device)
    sync(device)
    rate = n / (time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return {"arch": arch, "precision": precision, "patch": patch, "steps": n, "steps_per_s": rate,
            "mp_per_s": rate * args.batch * patch ** 2 / 1e6, "peak_gib": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--archs", nargs="+", default=list(ARCHS))
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--patches", type=int, nargs="+", default=[96], help="patch sides to time")
    ap.add_argument("--seconds", type=float, default=10.0, help="timed training per row")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--name", default="train_speed")
    args = ap.parse_args()
    device = pick_device(args.device)
    precisions = []
    for p in ("fp32", "bf16"):
        try:
            check_precision(p, device)
            precisions.append(p)
        except ValueError:
            pass
    rows = []
    for patch in args.patches:
        for arch in args.archs:
            for precision in precisions:
                rows.append(steps_per_second(arch, precision, patch, args, device))
                print(json.dumps(rows[-1]), flush=True)
    base = {(r["arch"], r["patch"]): r["steps_per_s"] for r in rows if r["precision"] == "fp32"}
    result = {"machine": machine(), "device": str(device), "batch": args.batch, "channels": args.channels, "rows": rows}
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    lines = [f"Distill training speed on {result['machine']}, device {device} — batch {args.batch}, "
             f"{args.channels} channel(s), {args.seconds:g} s timed per row after {args.warmup} warm-up steps", "",
             "| patch | arch | precision | steps/s | training MP/s | vs fp32 | peak GPU memory (GiB) |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        peak = "" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
        lines.append(f"| {r['patch']}² | {r['arch']} | {r['precision']} | {r['steps_per_s']:.1f} | {r['mp_per_s']:.1f} | "
                     f"{r['steps_per_s'] / base[r['arch'], r['patch']]:.2f}× | {peak} |")
    (OUT / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
