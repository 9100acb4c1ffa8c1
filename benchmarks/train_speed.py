"""How fast `distill` trains: steps per second of the real distill step per MWCNN arch and precision.

    python -m benchmarks.train_speed --name train_speed-h200 --patches 96 128   # a GPU machine
    python -m benchmarks.train_speed --device cpu --archs small --seconds 5     # a dry run
    python -m benchmarks.train_speed --processes 1 2 --device cpu               # `fit`: one process against torchrun

Each row times `make_step_loss` (patch sampling, noise synthesis from an untrained noise model, 1/8 of
the batch from stage-1 pairs as in distill, forward, backward, Adam) for a fixed time after a warm-up,
so the figure is what a distill run gets, data pipeline included. bf16 rows only where the device
trains in bf16. Writes benchmarks/results/NAME.{md,json}.

``--processes`` instead runs the real `denoise-cli fit` for a fixed number of steps, alone and under torchrun with the
same global batch split over the processes (threads shared out evenly: cores / processes each), and reads steps/s
from the checkpoint's training time: the scaling of DistributedDataParallel as a number. Writes NAME-processes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .speed import machine
from denoise_cli.inference.devices import pick_device
from denoise_cli.models.mwcnn import ARCHS, build_mwcnn
from denoise_cli.training.distill import DistillConfig, check_precision, make_step_loss
from denoise_cli.training.fit_config import FitConfig
from denoise_cli.training.stage1 import Stage1

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


def fit_rate(processes: int, args: argparse.Namespace, noisy: Path, work: Path) -> dict:
    """Steps/s of `fit` with the global batch args.batch shared over ``processes`` processes."""
    run = work / f"run{processes}"
    threads = max(1, (os.cpu_count() or 1) // processes)
    launcher = [sys.executable, "-m", "denoise_cli"] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes), "-m",
        "denoise_cli"]
    cmd = [*launcher, "fit", str(noisy), "--run-dir", str(run), "--iterations", str(args.fit_steps), "--batch",
           str(args.batch // processes), "--mode", "synthetic", "--device", args.device]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    from safetensors import safe_open

    with safe_open(str(run / "checkpoint.safetensors"), framework="pt") as f:
        meta = f.metadata()
    rate = int(meta["step"]) / float(meta["elapsed"])
    return {"processes": processes, "threads_each": threads, "batch_each": args.batch // processes,
            "steps_per_s": rate, "mp_per_s": rate * args.batch * 48 ** 2 / 1e6}


def processes_table(args: argparse.Namespace) -> None:
    """`fit` alone and under torchrun: steps/s and training MP/s per process count."""
    rows = []
    with tempfile.TemporaryDirectory() as d:
        noisy = Path(d) / "noisy"
        rng = np.random.default_rng(0)
        from denoise_cli.io import Photo, write_image

        for i in range(4):
            write_image(Photo(rng.random((256, 256, args.channels), dtype=np.float32)), noisy / f"{i}.png")
        for p in args.processes:
            rows.append(fit_rate(p, args, noisy, Path(d)))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["steps_per_s"]
    lines = [f"`fit` ({args.fit_steps} steps, global batch {args.batch} of 48² patches, {args.channels} channel(s)) "
             f"alone and under torchrun on {machine()}, device {args.device}; steps/s from the checkpoint's training "
             "time (start-up excluded, the held-out scores included)", "",
             "| processes | threads each | batch each | steps/s | training MP/s | vs 1 process |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['processes']} | {r['threads_each']} | {r['batch_each']} | {r['steps_per_s']:.2f} | "
              f"{r['mp_per_s']:.2f} | {r['steps_per_s'] / base:.2f}× |" for r in rows]
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.name}-processes.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    (OUT / f"{args.name}-processes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


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
    ap.add_argument("--processes", type=int, nargs="+", help="time `fit` alone and under torchrun with these counts")
    ap.add_argument("--fit-steps", type=int, default=200, help="steps per --processes run")
    args = ap.parse_args()
    if args.processes:
        return processes_table(args)
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
