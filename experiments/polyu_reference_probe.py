"""What PolyU's references reward: is the high-frequency content of a noisy shot still present in the reference?

    python experiments/polyu_reference_probe.py

Three measurements, written to results/polyu_reference.{md,json}:

1. The transfer function from reference to noisy shot, per camera, in radial frequency bands (gray, Hann-windowed):
   H(f) = Σ Y·X̄ / Σ |X|². The shot's noise is independent of the reference and averages out, so H below 1 at a
   frequency means the shot and the mean of many shots no longer agree there (misalignment between shots, each
   file's own JPEG q75): detail a good denoiser keeps counts as error.
2. PSNR of the shipped default's output as it is and after a Gaussian blur of 0.5 / 0.7 px, per camera.
3. The control for 2: the same blurs on 12 CBSD68 crops (256²) given camera noise by the Canon 80D's calibrated
   pipeline (from results/pipeline_fidelity.json, σ × 1.25 as the truth reads higher), where the reference is exact.
   A blur that gains on PolyU but loses here gains from the references, not from noise the model left.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from benchmarks.noise_fidelity import POLYU
from denoise_cli.api import load_denoiser
from denoise_cli.evaluation import metrics
from denoise_cli.evaluation.metrics import to_255
from denoise_cli.io import list_images, read_image
from denoise_cli.noise.pipeline import CameraPipeline, render

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "results"
BANDS = 8  # radial bands from 0 to 0.5 cycles per pixel
BLURS = (0.0, 0.5, 0.7)
CONTROL_IMAGES = 12


def gray(im: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(im.astype(np.float32), cv2.COLOR_RGB2GRAY).astype(np.float64)


def band_index(shape: tuple[int, int]) -> np.ndarray:
    u, v = np.meshgrid(np.fft.fftfreq(shape[1]), np.fft.fftfreq(shape[0]))
    return np.clip((np.hypot(u, v) / 0.5 * BANDS).astype(int), 0, BANDS - 1).ravel()


def spectrum(im: np.ndarray) -> np.ndarray:
    w = np.outer(np.hanning(im.shape[0]), np.hanning(im.shape[1]))
    return np.fft.fft2((im - im.mean()) * w).ravel()


def psnr(out: np.ndarray, ref: np.ndarray) -> float:
    return metrics.psnr(to_255(ref), to_255(out))


def blurred(im: np.ndarray, s: float) -> np.ndarray:
    return cv2.GaussianBlur(im, (0, 0), s) if s else im


def main() -> None:
    model = load_denoiser(None, device="cpu")
    cross, power = defaultdict(lambda: np.zeros(BANDS)), defaultdict(lambda: np.zeros(BANDS))
    scores: dict = defaultdict(lambda: defaultdict(list))
    for p in list_images(POLYU / "noisy"):
        cam = p.name.split("_", 1)[0]
        y, x = read_image(p).pixels, read_image(POLYU / "clean" / p.name).pixels
        fy, fx = spectrum(gray(y)), spectrum(gray(x))
        b = band_index(x.shape[:2])
        for key in (cam, "all"):
            cross[key] += np.bincount(b, (fy * fx.conj()).real, BANDS)
            power[key] += np.bincount(b, np.abs(fx) ** 2, BANDS)
        out = model.denoise(y.copy())
        for s in BLURS:
            scores[cam][s].append(psnr(blurred(out, s), x))
            scores["all"][s].append(psnr(blurred(out, s), x))
    rows = {k: {"transfer": (cross[k] / power[k]).tolist(), "psnr": {s: float(np.mean(v)) for s, v in scores[k].items()}}
            for k in sorted(cross)}
    fidelity = json.loads((ROOT / "benchmarks" / "results" / "pipeline_fidelity.json").read_text())["rows"]
    camera = CameraPipeline.from_dict(next(r["pipeline"] for r in fidelity if r["camera"] == "Canon80D")).scaled(1.25 ** 2)
    control: dict = defaultdict(list)
    for i, f in enumerate(list_images(ROOT.parent / "shared" / "data" / "test" / "CBSD68")[:CONTROL_IMAGES]):
        x = read_image(f).pixels[:256, :256]
        out = model.denoise(render(x, camera, np.random.default_rng(i)).astype(np.float32))
        for s in BLURS:
            control[s].append(psnr(blurred(out, s), x))
    result = {"bands_cycles_per_pixel": [(i + 0.5) * 0.5 / BANDS for i in range(BANDS)], "polyu": rows,
              "control": {s: float(np.mean(v)) for s, v in control.items()}}
    OUT.mkdir(exist_ok=True)
    (OUT / "polyu_reference.json").write_text(json.dumps(result, indent=2))
    centres = " | ".join(f"{c:.2f}" for c in result["bands_cycles_per_pixel"])
    lines = ["Transfer from PolyU's reference to the noisy shot, H(f) = ΣY·X̄/Σ|X|² (gray), per radial band "
             "(cycles/pixel):", "", f"| camera | {centres} |", "|---|" + "---:|" * BANDS]
    lines += [f"| {k} | " + " | ".join(f"{h:.2f}" for h in r["transfer"]) + " |" for k, r in rows.items()]
    lines += ["", "PSNR of the shipped default's output, blurred (Gaussian σ in px):", "",
              "| images | " + " | ".join(f"blur {s:g}" for s in BLURS) + " |", "|---|" + "---:|" * len(BLURS)]
    lines += [f"| PolyU {k} | " + " | ".join(f"{r['psnr'][s]:.2f}" for s in BLURS) + " |" for k, r in rows.items()]
    lines.append(f"| control: {CONTROL_IMAGES} CBSD68 crops, 80D camera noise | "
                 + " | ".join(f"{result['control'][s]:.2f}" for s in BLURS) + " |")
    (OUT / "polyu_reference.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
