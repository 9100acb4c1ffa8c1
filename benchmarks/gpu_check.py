"""CUDA correctness of everything that runs on a GPU, each against the CPU.

Inference (fp32/fp16/bf16, tiling), the blind spot, stage-1 fusion, and short fit/distill runs with resume.

    python -m benchmarks.gpu_check            # writes benchmarks/results/gpu_check.{md,json}

Unit tests never need a GPU; this is the script to run when one is lent. Inputs are real
images (the first BSD68 image with seeded AWGN σ=25 and the README example photo), never zeros.
Comparisons are on 8-bit outputs, as saved files would be: max |Δ| in 8-bit levels and the PSNR
between the two devices' outputs, plus each output's PSNR against the clean image where there is one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from .common import DATA, FIT_RUNS, RESULTS, ROOT
from .speed import timed
from denoise_cli.registry.checkpoint import load_model
from denoise_cli.evaluation.scoring import synthetic_pairs
from denoise_cli.inference.denoiser import Denoiser
from denoise_cli.io import Photo, read_image, write_image
from denoise_cli.evaluation.metrics import psnr, to_255
from denoise_cli.models.dbsn import ARCHS as DBSN_ARCHS, build_dbsn
from denoise_cli.training.runs import Budget, Run
from denoise_cli.training.distill import DistillConfig, distill
from denoise_cli.training.fit_run import FitRun
from denoise_cli.training.fit import fit
from denoise_cli.training.fit_config import FitConfig
from denoise_cli.registry.weights import load_registry, resolve

EXAMPLE = ROOT / "denoise_cli" / "examples"


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """Agreement of two [0,1] outputs as saved 8-bit images."""
    a8, b8 = to_255(a), to_255(b)
    return {"max_levels": float(np.abs(a8 - b8).max()), "psnr_between": psnr(a8, b8),
            "mean_abs_levels": float(np.abs(a8 - b8).mean())}


def inputs() -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """name → (noisy H×W×C in [0,1], clean or None)."""
    out = {}
    name, clean, noisy = next(synthetic_pairs(DATA / "test" / "BSD68", "awgn:25", 0, 1))
    out[f"BSD68/{name} σ25"] = (noisy, clean)
    out["examples/noisy.png"] = (read_image(EXAMPLE / "noisy.png").pixels, read_image(EXAMPLE / "clean.png").pixels)
    return out


def check_inference(rows: list[dict], dev: torch.device) -> None:
    reg = load_registry()
    imgs = inputs()
    for name, entry in reg.entries.items():
        if not entry.embedded or entry.channels == 4:  # RAW models read Bayer planes, not these images
            continue
        cpu = Denoiser(load_model(resolve(name)), torch.device("cpu"), "fp32", tile=0)
        on_dev = load_model(resolve(name))  # a second copy: Denoiser moves its model to the device
        for img_name, (noisy, clean) in imgs.items():
            ref = cpu(noisy)
            for prec in ("fp32", "fp16", "bf16") if dev.type != "cpu" else ("fp32",):
                for tile in (0, 128):
                    out = Denoiser(on_dev, dev, prec, tile=tile)(noisy)
                    row = {"check": "denoise", "weights": name, "image": img_name, "precision": prec, "tile": tile,
                           **compare(ref, out), "finite": bool(np.isfinite(out).all())}
                    if clean is not None:
                        row["psnr_cpu"] = psnr(to_255(clean), to_255(ref))
                        row["psnr_gpu"] = psnr(to_255(clean), to_255(out))
                    rows.append(row)


def check_blind_spot(rows: list[dict], dev: torch.device) -> None:
    for arch in DBSN_ARCHS:
        for c in (1, 3):
            net = build_dbsn(c, arch).to(dev).eval()
            x = torch.rand(1, c, 40, 40, device=dev, requires_grad=True)
            mu, _ = net(x)
            mu[0, :, 20, 20].sum().backward()
            g = x.grad[0, :, 20, 20].abs().max().item()
            around = x.grad[0].abs().sum().item()
            rows.append({"check": "blind spot", "arch": arch, "channels": c, "grad_at_centre": g,
                         "grad_elsewhere": around, "ok": g == 0.0 and around > 0})


def check_stage1(rows: list[dict], speed: list[dict], dev: torch.device) -> None:
    run = Run(FIT_RUNS / "bsd68-awgn25-small")
    if not run.exists():
        rows.append({"check": "stage 1", "skipped": f"{run.path} missing"})
        return
    (name, clean, noisy), = synthetic_pairs(DATA / "test" / "BSD68", "awgn:25", 0, 1)
    cpu, gpu = FitRun(run.path).stage1(torch.device("cpu")), FitRun(run.path).stage1(dev)
    a, b = cpu.denoise(noisy), gpu.denoise(noisy)
    rows.append({"check": "stage 1 fusion", "run": run.path.name, "image": name, **compare(a, b),
                 "psnr_cpu": psnr(to_255(clean), to_255(a)), "psnr_gpu": psnr(to_255(clean), to_255(b))})
    den = Denoiser(load_model(resolve("gray-awgn-small")), dev, "fp32")
    for label, fn in (("stage 1 (D-BSN small + fusion)", gpu.denoise), ("distilled MWCNN small", den)):
        speed.append({"method": label, "image": f"{name} {noisy.shape[1]}×{noisy.shape[0]}",
                      "seconds": timed(lambda: (fn(noisy), sync(dev)), 10)})


def check_training(rows: list[dict], dev: torch.device) -> None:
    """Tiny fit → distill on CUDA in both modes, interrupted and resumed: finite losses, files written."""
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        rng = np.random.default_rng(0)
        for mode, c in (("synthetic", 1), ("real", 3)):
            noisy = d / f"noisy-{mode}"
            clean = d / f"clean-{mode}"
            for i in range(3):
                base = rng.random((1, 1, c)) * 0.6 + 0.2 + 0.1 * np.sin(np.arange(96)[:, None, None] / 7)
                base = np.broadcast_to(base, (96, 96, c))
                write_image(Photo(np.clip(base + rng.normal(0, 0.1, base.shape), 0, 1).astype(np.float32)),
                            noisy / f"{i}.png")
                write_image(Photo(base.astype(np.float32)), clean / f"{i}.png")
            run = Run(d / f"fit-{mode}")
            cfg = FitConfig(mode=mode, channels=c, patch=24, batch=16 if mode == "real" else 4)
            fit(noisy, run, cfg, Budget(30, None), dev)
            fit(noisy, run, None, Budget(60, None), dev)  # resume
            out = Run(d / f"distill-{mode}")
            dcfg = DistillConfig(fit_run=str(run.path), clean_dir=str(clean), patch=32, batch=8)
            distill(dcfg, out, Budget(30, None), dev)
            path = distill(dcfg, out, Budget(60, None), dev)
            recs = run.records() + out.records()
            rows.append({"check": f"fit+distill on {dev.type}", "mode": mode, "fit_steps": run.records()[-1]["step"],
                         "distill_steps": out.records()[-1]["step"],
                         "losses_finite": all(np.isfinite(r["loss"]) for r in recs if r.get("loss") is not None),
                         "denoised": len(list((run.path / "denoised").glob("*.png"))), "model": path.exists()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of the script itself (CPU against CPU)")
    dev = torch.device(ap.parse_args().device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check.py: no CUDA device here")
    info = {"gpu": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu (dry run)", "torch": torch.__version__,
            "tf32_conv": torch.backends.cudnn.allow_tf32, "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}
    rows: list[dict] = []
    speed: list[dict] = []
    for check in (check_blind_spot, check_inference, lambda r, d: check_stage1(r, speed, d), check_training):
        try:
            check(rows, dev)
        except Exception as e:  # keep going: one broken check must not hide the others
            rows.append({"check": getattr(check, "__name__", "check"), "error": f"{type(e).__name__}: {e}"})
    suffix = "" if dev.type == "cuda" else "-dryrun"
    result = {"info": info, "rows": rows, "speed": speed}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"gpu_check{suffix}.json").write_text(json.dumps(result, indent=2))
    lines = [f"CUDA checks on {info['gpu']}, torch {info['torch']} (TF32 convs {info['tf32_conv']})", "",
             "| weights | image | precision | tile | max Δ (8-bit levels) | PSNR CPU↔GPU | PSNR vs clean CPU / GPU |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if r.get("check") == "denoise":
            vs = f"{r['psnr_cpu']:.2f} / {r['psnr_gpu']:.2f}" if "psnr_cpu" in r else "—"
            lines.append(f"| {r['weights']} | {r['image']} | {r['precision']} | {r['tile']} | {r['max_levels']:.0f} | "
                         f"{r['psnr_between']:.1f} | {vs} |")
    lines += [""] + [f"- {json.dumps(r)}" for r in rows if r.get("check") != "denoise"]
    lines += ["", f"| method ({dev.type}) | image | s / image |", "|---|---|---:|"]
    lines += [f"| {s['method']} | {s['image']} | {s['seconds']:.4f} |" for s in speed]
    (RESULTS / f"gpu_check{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
