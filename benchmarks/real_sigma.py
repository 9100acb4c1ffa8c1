"""Real mode's learned noise against the truth, per Bayer group and channel, on synthetic camera noise.

    denoise-cli synth ../shared/data/test/CBSD68 -o /tmp/cam1600 -n camera:1600 --seed 0
    denoise-cli fit /tmp/cam1600 --run runs/real/cam1600 --time-budget 30m
    python benchmarks/real_sigma.py runs/real/cam1600 --noise camera:1600

The truth is the camera noise alone: the noisy image minus the same pipeline rendered without noise
(`noise.camera_render`), not minus the clean image, whose demosaicking error (σ 11–16 in the
interpolated channels on CBSD68) is no noise a camera model should learn. Demosaicking also makes the
noise differ by Bayer site: a channel sampled at a pixel carries its full noise, an interpolated one
about half of it, which is why real mode learns one noise model per group.

For each group and channel, over pixels of the first N images whose noise-free value lies within ±0.025
of x: the true σ, the σ the run's noise model gives those noisy pixels (Σn), and at x = 0.5 the split
the likelihood made: Σμ, the residual y−μ both should add up to, and D-BSN's true error (render − μ).
A second table gives the PSNR of the noisy images and of the run's stage-1 output (its denoised/ folder).
"report" is the noise report's flat-gray curve at 0.5. The max error is |Σn/true − 1| over x in
[0.2, 0.8] where at least 200 pixels fall. Writes benchmarks/results/real_sigma.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, RESULTS, merge_rows, write_table  # noqa: E402
from denoise_cli.evaluation.scoring import synthetic_pairs  # noqa: E402
from denoise_cli.io import read_image  # noqa: E402
from denoise_cli.evaluation.metrics import psnr, to_255  # noqa: E402
from denoise_cli.evaluation.synthetic_noise import camera_render, parse_spec  # noqa: E402
from denoise_cli.training.noise_report import MIN_PIXELS, group_map, pixel_variance  # noqa: E402
from denoise_cli.training.pixel_shuffle import bayer_groups, pad_to_multiple, pd_down, pd_up  # noqa: E402
from denoise_cli.training.runs import Run  # noqa: E402
from denoise_cli.training.fit import load_stage1, saved_config  # noqa: E402

LEVELS = (0.2, 0.35, 0.5, 0.65, 0.8)
MID = 0.5
HALF_BIN = 0.025
CHANNELS = "RGB"
SITES = ("R site", "G site (R row)", "G site (B row)", "B site")  # group 2·(i mod 2) + (j mod 2), RGGB


@torch.no_grad()
def blind_spot_maps(stage, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D-BSN's μ and Σμ's diagonal on the pixel-shuffled sub-images, put back at full resolution."""
    t = torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1)))[None]
    tp, (h, w) = pad_to_multiple(t)
    mu, l_mu = stage.dbsn(pd_down(tp))
    var_mu = stage.sigma_mu(l_mu, bayer_groups(1)).diagonal(dim1=-2, dim2=-1).permute(0, 3, 1, 2)
    return tuple(pd_up(a)[0, :, :h, :w].numpy().transpose(1, 2, 0) for a in (mu, var_mu))


def gather(run: Run, clean_dir: Path, noise: str, limit: int) -> tuple[dict[str, np.ndarray], dict[str, float | None]]:
    """Per pixel (all images concatenated): group, noise-free value, and the squared quantities compared;
    and mean PSNRs of the noisy and the run's stage-1 images against the clean and the noise-free render."""
    stage = load_stage1(run)
    stage.dbsn.eval()
    stage.noise.eval()
    iso = parse_spec(noise).params[0]
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("group", "render", "var_n", "var_mu", "res", "err", "true")}
    scores: dict[str, list[float]] = {k: [] for k in ("noisy_psnr", "stage1_psnr", "noisy_psnr_render",
                                                      "stage1_psnr_render")}
    for name, clean, noisy in synthetic_pairs(clean_dir, noise, 0, limit):
        render = camera_render(clean.astype(np.float64), iso).astype(np.float32)
        denoised = run.path / "denoised" / f"{Path(name).stem}.png"
        for key, image in (("noisy", noisy), ("stage1", read_image(denoised).pixels if denoised.exists() else None)):
            if image is not None:
                scores[f"{key}_psnr"].append(psnr(to_255(clean), to_255(image)))
                scores[f"{key}_psnr_render"].append(psnr(to_255(render), to_255(image)))
        mu, var_mu = blind_spot_maps(stage, noisy)
        gmap = group_map(*noisy.shape[:2], stage.noise.groups)
        var_n = np.zeros_like(noisy)
        for g in range(stage.noise.groups):
            var_n[gmap == g] = pixel_variance(stage.noise, noisy[gmap == g], g, torch.device("cpu"))
        for k, v in (("group", np.broadcast_to(gmap[..., None], noisy.shape)), ("render", render), ("var_n", var_n),
                     ("var_mu", var_mu), ("res", (noisy - mu) ** 2), ("err", (render - mu) ** 2),
                     ("true", (noisy - render) ** 2)):
            cols[k].append(np.asarray(v).reshape(-1, 3))
    return ({k: np.concatenate(v) for k, v in cols.items()},
            {k: float(np.mean(v)) if v else None for k, v in scores.items()})


def sigma(values: np.ndarray) -> float | None:
    """Root mean of squared values on the 0–255 scale; None for too few pixels."""
    return float(np.sqrt(values.mean()) * 255) if len(values) >= MIN_PIXELS else None


def score(run: Run, clean_dir: Path, noise: str, limit: int) -> list[dict]:
    """One row per Bayer group and channel."""
    px, psnrs = gather(run, clean_dir, noise, limit)
    cfg = saved_config(run)
    setting = (f"{'eq. 8' if cfg.likelihood == 'constrained' else 'exact'}, Σμ {'per group' if cfg.group_sigma_mu else 'shared'}"
               f", Σn {cfg.noise_cov}, Σμ starts {cfg.sigma_mu_start}")
    report_path = run.path / "noise_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    rows = []
    for g in range(int(px["group"].max()) + 1):
        for c in range(3):
            sel_g = px["group"][:, c] == g
            at = {lv: sel_g & (np.abs(px["render"][:, c] - lv) < HALF_BIN) for lv in LEVELS}
            true = {lv: sigma(px["true"][s, c]) for lv, s in at.items()}
            learned = {lv: sigma(px["var_n"][s, c]) for lv, s in at.items()}
            errors = [abs(learned[lv] / true[lv] - 1) for lv in LEVELS if true[lv] and learned[lv]]
            mid = at[MID]
            flat = None
            if report is not None:
                curve = list(report["sigma"].values())[g][c]
                flat = float(np.interp(MID, report["levels"], curve))
            rows.append({"row": f"{run.path.name}/g{g}/{CHANNELS[c]}", "run": run.path.name, "set": clean_dir.name,
                         "noise": noise, "images": limit, "fit": setting, "group": g,
                         "site": SITES[g] if px["group"].max() == 3 else "all",
                         "channel": CHANNELS[c], "true": [true[lv] for lv in LEVELS],
                         "sigma_n": [learned[lv] for lv in LEVELS],
                         "sigma_mu": sigma(px["var_mu"][mid, c]), "residual": sigma(px["res"][mid, c]),
                         "mu_error": sigma(px["err"][mid, c]), "report": flat,
                         "max_rel_error": max(errors) if errors else None, **psnrs})
    return rows


def fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def run_cells(r: dict) -> str:
    """The cells both tables start a row with: run, its fit settings, and the set and noise it was scored on
    (rows scored before --clean existed were all on CBSD68)."""
    return f"| {r['run']} | {r.get('fit', '—')} | {r.get('set', 'CBSD68')} {r['noise']} ({r['images']}) "


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="real-mode fit run folders (fitted on the synth set below)")
    ap.add_argument("--noise", default="camera:1600", help="the camera:ISO spec the runs' images were made with")
    ap.add_argument("--clean", type=Path, default=DATA / "test" / "CBSD68",
                    help="the clean images `synth` made the runs' noisy images from (default: CBSD68)")
    ap.add_argument("--limit", type=int, default=16, help="first N clean images (seed 0, as `synth` made them)")
    args = ap.parse_args()
    if parse_spec(args.noise).kind != "camera":
        ap.error("--noise must be camera:ISO")
    new = [r for path in args.runs for r in score(Run(path), args.clean, args.noise, args.limit)]
    rows = merge_rows(RESULTS / "real_sigma.json", new, key="row")
    levels = " / ".join(f"{lv:g}" for lv in LEVELS)
    lines = ["Real mode: learned noise σ against the true camera noise (noisy − noise-free render), per Bayer "
             f"group and channel; first N images of the set, seed 0; σ on the 0–255 scale at x = {levels}", "",
             "| fit run | likelihood, Σμ, Σn | set, noise (N) | group | ch | true σ | learned Σn σ | max error | report σ(0.5) "
             "| Σμ (0.5) | y−μ (0.5) | true render−μ (0.5) |",
             "|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        err = "—" if r["max_rel_error"] is None else f"{100 * r['max_rel_error']:.0f} %"
        lines.append(run_cells(r) + f"| {r['site']} | {r['channel']} | "
                     + " / ".join(map(fmt, r["true"])) + " | " + " / ".join(map(fmt, r["sigma_n"]))
                     + f" | {err} | {fmt(r['report'])} | {fmt(r['sigma_mu'])} | {fmt(r['residual'])} "
                       f"| {fmt(r['mu_error'])} |")
    lines += ["", "PSNR of the same images (dB), against the clean image / against the noise-free render:", "",
              "| fit run | likelihood, Σμ, Σn | set, noise (N) | noisy | stage 1 |", "|---|---|---|---:|---:|"]
    for r in {r["run"]: r for r in rows}.values():
        lines.append(run_cells(r) + f"| {fmt(r['noisy_psnr'], 2)} / {fmt(r['noisy_psnr_render'], 2)} "
                     f"| {fmt(r['stage1_psnr'], 2)} / {fmt(r['stage1_psnr_render'], 2)} |")
    write_table("real_sigma", rows, lines)


if __name__ == "__main__":
    main()
