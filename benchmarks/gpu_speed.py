"""How fast the small model can run on a GPU: eager, channels-last, fp16/bf16, torch.compile (CUDA graphs) and batched
tiles, each checked against the eager fp32 output. One call of a few minutes on a lent GPU; never part of the tests.

    python -m benchmarks.gpu_speed --name gpu_speed-h200          # on the GPU machine
    python -m benchmarks.gpu_speed --device cpu --size 256 --quick # a dry run of every code path on a CPU

Each setting runs the default colour model on ``--size``² images (the whole image at once, or cut into ``--batch``
tiles run as one batch) for ``--seconds`` after a warm-up; MP/s counts only the network, with the device synchronised.
Settings that fail (e.g. torch.compile without a compiler) are reported as failed, and the rest still run.
Writes results/NAME.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

import torch

from denoise_cli.registry.checkpoint import load_model
from denoise_cli.registry.weights import resolve

from .speed import machine

OUT = Path(__file__).resolve().parent / "results"


def rate(fn, x: torch.Tensor, seconds: float, device: torch.device) -> float:
    """Megapixels per second of ``fn`` on x (N,C,H,W), after three warm-up calls."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
    for _ in range(3):
        fn(x)
    sync()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(x)
        calls += 1
    sync()
    return calls * x.shape[0] * x.shape[2] * x.shape[3] / 1e6 / (time.perf_counter() - start)


def settings(model: torch.nn.Module, device: torch.device, quick: bool) -> dict:
    """name → (function of an input batch, dtype of the input, memory format)."""
    half = torch.float16 if device.type == "cuda" else torch.bfloat16

    def autocast(dtype):
        def run(x):
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype):
                return model(x)
        return run

    def eager(x):
        with torch.inference_mode():
            return model(x)

    name = str(half).split(".")[-1]
    out = {"fp32 eager": (eager, torch.contiguous_format),
           f"{name} autocast": (autocast(half), torch.contiguous_format),
           f"{name} autocast, channels-last": (autocast(half), torch.channels_last)}
    if half != torch.bfloat16:
        out["bfloat16 autocast"] = (autocast(torch.bfloat16), torch.contiguous_format)
    if not quick:
        compiled = torch.compile(model, mode="reduce-overhead" if device.type == "cuda" else "default")

        def compiled_half(x):
            with torch.inference_mode(), torch.autocast(device.type, dtype=half):
                return compiled(x)
        out[f"{name} + torch.compile (CUDA graphs)"] = (compiled_half, torch.channels_last)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=4, help="tiles per batch in the batched rows")
    ap.add_argument("--seconds", type=float, default=10.0, help="timed seconds per setting")
    ap.add_argument("--quick", action="store_true", help="no torch.compile; 1 s per setting")
    ap.add_argument("--name", default="gpu_speed")
    args = ap.parse_args()
    seconds = 1.0 if args.quick else args.seconds
    device = torch.device(args.device)
    model = load_model(resolve(None)).to(device).eval()
    whole = torch.rand(1, 3, args.size, args.size, device=device)
    side = args.size // 2
    tiles = torch.rand(args.batch, 3, side, side, device=device)
    with torch.inference_mode():
        reference = model(whole).float()
    rows = []
    for name, (fn, fmt) in settings(model, device, args.quick).items():
        for label, x in ((f"whole {args.size}²", whole), (f"{args.batch} tiles of {side}² in one batch", tiles)):
            row = {"setting": name, "input": label}
            try:
                x = x.contiguous(memory_format=fmt)
                row["mp_per_s"] = rate(fn, x, seconds, device)
                if x.shape == whole.shape:
                    row["max_diff_255"] = float((fn(x).float() - reference).abs().max()) * 255
            except Exception as e:  # a setting this machine cannot run: say so, keep going
                row["failed"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                traceback.print_exc()
            rows.append(row)
            print(row, flush=True)
    OUT.mkdir(exist_ok=True)
    result = {"machine": machine(), "device": str(device), "rows": rows}
    (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    lines = [f"The default model's network alone on {result['machine']} ({device}); MP/s over {seconds:g} s after a "
             "warm-up; max difference from eager fp32 in 8-bit levels.", "",
             "| setting | input | MP/s | max diff |", "|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['setting']} | {r['input']} | " + (f"{r['mp_per_s']:.1f}" if "mp_per_s" in r else
                     f"failed ({r['failed']})") + " | " + (f"{r['max_diff_255']:.2f}" if "max_diff_255" in r else "—")
                     + " |")
    (OUT / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
