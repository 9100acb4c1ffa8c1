"""Real camera noise with references: every method per camera, side by side, on PolyU.

Any set laid out as noisy/ + clean/ with CAMERA_… file names works the same way.

    python -m benchmarks.real_cameras --anchors            # noisy, CBM3D (blind σ, σ sweep), the shipped default
    python -m benchmarks.real_cameras --adapt --jobs 2     # + `adapt` on each camera's noisy crops, two at a time
    python -m benchmarks.real_cameras --quick --adapt      # one camera, short budgets: for trying a change
    python -m benchmarks.real_cameras --table              # rebuild the table from the cached scores only

Rows: the noisy photo; CBM3D with a blind σ (the MAD estimate a user without references gets); CBM3D with the best
σ per camera from a sweep, chosen on the references (an upper bound for the classical anchor, not a method a user
has); the guided filter alone, stage 1's last step applied to the noisy photo (what the learned part adds over it);
the shipped default; and per camera `fit` (stage 1) and `adapt` (fit + distill) run on **that camera's noisy
crops only**: `fit`/`distill` are handed the noisy folder and never a reference. PSNR/SSIM as `denoise-cli eval`
(8-bit outputs, 0–255, all channels, no crop). Scores are cached per image in results/real_cameras/, so a rerun
only computes what is missing. Writes results/real_cameras.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from denoise_cli.evaluation.scoring import classical, evaluate
from denoise_cli.io import list_images, read_image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real-pairs" / "PolyU"
OUT = ROOT / "benchmarks" / "results"
CACHE = OUT / "real_cameras"
RUNS = ROOT / "runs" / "real_cameras"
NLM_H = (3, 4, 5)  # OpenCV NLM filter strengths tried per camera (h = hColor, 7×7 patches, 21×21 search)
SWEEP = (8, 12, 16, 20, 24)  # CBM3D σ values tried per camera (0–255)
SWEEP_PER_CAMERA = 4  # images per camera the σ sweep is scored on (the best σ is then run on all of them)
QUICK_CAMERA = "Canon600D"  # the smallest camera (11 crops)


def camera_of(name: str) -> str:
    """PolyU names start with the camera: Canon5D2_5_160_3200_chair_11.jpg → Canon5D2."""
    return name.split("_", 1)[0]


def cameras(data: Path) -> dict[str, list[str]]:
    """Image names per camera, sorted."""
    out: dict[str, list[str]] = defaultdict(list)
    for p in list_images(data / "noisy"):
        out[camera_of(p.name)].append(p.name)
    return dict(sorted(out.items()))


def sweep_subset(names: list[str], k: int = SWEEP_PER_CAMERA) -> list[str]:
    """k names spread evenly over a camera's sorted list (its scenes and ISOs), for the σ sweep."""
    idx = np.linspace(0, len(names) - 1, min(k, len(names))).round().astype(int)
    return [names[i] for i in sorted(set(idx))]


class Scores:
    """Per-image PSNR/SSIM/seconds of one method, cached as results/real_cameras/METHOD.json."""

    def __init__(self, method: str) -> None:
        self.path = CACHE / f"{method}.json"
        self.rows: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def missing(self, names: list[str]) -> list[str]:
        return [n for n in names if n not in self.rows]

    def add(self, name: str, row: dict) -> None:
        self.rows[name] = row
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".part")
        tmp.write_text(json.dumps(self.rows, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def mean(self, names: list[str]) -> dict | None:
        rows = [self.rows[n] for n in names if n in self.rows]
        if len(rows) != len(names) or not rows:
            return None
        return {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "seconds")}


def score(method: str, fn, data: Path, names: list[str], *, clean_dir: Path | None = None) -> Scores:
    """Run ``fn`` (noisy H×W×3 → denoised) on the names not yet cached for ``method``, caching each."""
    s = Scores(method)
    for name in s.missing(names):
        clean = read_image((clean_dir or data / "clean") / name).pixels
        noisy = read_image(data / "noisy" / name).pixels
        (row,) = evaluate(iter([(name, clean, noisy)]), fn)
        s.add(name, {"psnr": row.psnr, "ssim": row.ssim, "seconds": row.seconds})
        print(f"{method:28} {name:44} {row.psnr:.2f} dB  {row.seconds:.1f} s", flush=True)
    return s


def cbm3d(sigma: float):
    """CBM3D (bm3d package) with a fixed σ on the 0–255 scale."""
    import bm3d

    return lambda y: np.asarray(bm3d.bm3d_rgb(y, sigma / 255), np.float32)


def nlm(h: int):
    """OpenCV's non-local means for colour images, the one-line classical call: h = hColor, 7×7 patches, 21×21 search."""
    import cv2

    def run(y: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)[..., ::-1])  # OpenCV's order
        return cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)[..., ::-1].astype(np.float32) / 255

    return run


def best_nlm(names: list[str]) -> int | None:
    """The NLM strength with the highest mean PSNR on a camera's crops (chosen on the references: an upper bound)."""
    means = {h: Scores(f"nlm-h{h}").mean(names) for h in NLM_H}
    done = [h for h in NLM_H if means[h]]
    return max(done, key=lambda h: means[h]["psnr"]) if done else None


def candidates(data: Path, cams: dict[str, list[str]], specs: list[str]) -> list[str]:
    """Score weights given as LABEL=NAME_OR_FILE (e.g. a model in training) on every crop; returns their labels."""
    from denoise_cli.api import load_denoiser

    every = [n for names in cams.values() for n in names]
    labels = []
    for spec in specs:
        label, _, weights = spec.partition("=")
        score(f"model-{label}", load_denoiser(weights, device="cpu", precision="fp32"), data, every)
        labels.append(label)
    return labels


def anchors(data: Path, cams: dict[str, list[str]]) -> None:
    """Noisy, CBM3D blind, the CBM3D sweep on each camera's subset, its best σ on all images, the shipped default,
    and the guided filter alone (what stage 1 ends with, on the noisy photo: how much the learning adds)."""
    from denoise_cli.api import load_denoiser
    from denoise_cli.training.guided_filter import guided_filter

    every = [n for names in cams.values() for n in names]
    score("noisy", lambda y: y, data, every)
    score("guided-filter", lambda y: np.clip(guided_filter(y, y, 1, 0.01), 0, 1), data, every)
    score("default", load_denoiser(None, device="cpu", precision="fp32"), data, every)
    for h in NLM_H:
        score(f"nlm-h{h}", nlm(h), data, every)
    for cam, names in cams.items():
        subset = sweep_subset(names)
        for sigma in SWEEP:
            score(f"cbm3d-s{sigma}", cbm3d(sigma), data, subset)
        best = best_sigma(cam, names)
        score(f"cbm3d-s{best}", cbm3d(best), data, names)
    score("cbm3d-blind", classical("bm3d", None), data, every)


def best_sigma(cam: str, names: list[str]) -> int:
    """The sweep's σ with the highest mean PSNR on the camera's subset (chosen on the references)."""
    subset = sweep_subset(names)
    means = {s: Scores(f"cbm3d-s{s}").mean(subset) for s in SWEEP}
    done = [s for s in SWEEP if means[s]]
    return max(done, key=lambda s: means[s]["psnr"]) if done else None


# --- adaptation: fit and adapt per camera ---------------------------------------------------------------------

def camera_folder(data: Path, cam: str, names: list[str]) -> Path:
    """A folder of symlinks to one camera's *noisy* crops: all that `fit`/`distill` are given."""
    folder = RUNS / "inputs" / cam
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        link = folder / n
        if not link.exists():
            link.symlink_to((data / "noisy" / n).resolve())
    return folder


def adapt_command(noisy: Path, clean_train: Path, run: Path, budget: str, extra: list[str]) -> list[str]:
    """The `denoise-cli adapt` command for one camera: only the noisy folder and unrelated clean images."""
    return [sys.executable, "-m", "denoise_cli", "adapt", str(noisy), str(clean_train), "--run", str(run),
            "--time-budget", budget, *extra]


def adapt_all(data: Path, cams: dict[str, list[str]], args: argparse.Namespace) -> None:
    """`adapt` per camera (``--jobs`` side by side, one thread each), then score its stage 1 and its model."""
    setting = args.setting
    procs: list[tuple[str, subprocess.Popen, float]] = []
    todo = [c for c in cams if not (RUNS / setting / c / "model" / "model.safetensors").exists()]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    log_dir = RUNS / setting / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    while todo or procs:
        while todo and len(procs) < args.jobs:
            cam = todo.pop(0)
            cmd = adapt_command(camera_folder(data, cam, cams[cam]), args.clean, RUNS / setting / cam, args.budget,
                                args.extra)
            (log_dir / f"{cam}.cmd").write_text(" ".join(cmd) + "\n")
            procs.append((cam, subprocess.Popen(cmd, env=env, stdout=open(log_dir / f"{cam}.log", "w"),
                                                stderr=subprocess.STDOUT), time.time()))
            print(f"adapt {cam}: started ({args.budget})", flush=True)
        time.sleep(5)
        for item in list(procs):
            cam, p, t0 = item
            if p.poll() is not None:
                procs.remove(item)
                (RUNS / setting / cam / "wall_seconds").write_text(f"{time.time() - t0:.0f}\n")
                print(f"adapt {cam}: exit {p.returncode} after {(time.time() - t0) / 60:.1f} min", flush=True)
    from denoise_cli.api import load_denoiser

    for cam, names in cams.items():
        run = RUNS / setting / cam
        if not (run / "model" / "model.safetensors").exists():
            continue
        stage1 = run / "denoised"
        score(f"{setting}-stage1", lambda y, _it=iter(names): read_image(stage1 / (Path(next(_it)).stem + ".png")).pixels,
              data, names)
        score(f"{setting}-adapt", load_denoiser(str(run / "model"), device="cpu", precision="fp32"), data, names)


# --- the table -----------------------------------------------------------------------------------------------

def table(cams: dict[str, list[str]], settings: list[str], models: list[str] = ()) -> list[dict]:
    """One row per method: PSNR per camera, the mean over cameras, the mean over all images, seconds per image."""
    best = {cam: best_sigma(cam, names) for cam, names in cams.items()}
    h = {cam: best_nlm(names) for cam, names in cams.items()}
    methods = [("noisy", "noisy photo", lambda cam: "noisy"),
               ("cbm3d-blind", "CBM3D, blind σ (MAD estimate)", lambda cam: "cbm3d-blind"),
               ("cbm3d-best", "CBM3D, best σ per camera (chosen on the references: an upper bound)",
                lambda cam: f"cbm3d-s{best[cam]}" if best[cam] else "cbm3d-none"),
               ("nlm-h4", "OpenCV NLM, `fastNlMeansDenoisingColored(h=hColor=4, 7, 21)`", lambda cam: "nlm-h4"),
               ("nlm-best", "OpenCV NLM, best h of 3/4/5 per camera (chosen on the references)",
                lambda cam: f"nlm-h{h[cam]}" if h[cam] else "nlm-none"),
               ("guided-filter", "guided filter alone on the noisy photo (radius 1, ε 0.01: stage 1's last step; no "
                "learning)", lambda cam: "guided-filter"),
               ("default", "shipped default, no adaptation", lambda cam: "default")]
    methods += [(f"model-{m}", f"weights `{m}`, no adaptation", lambda cam, m=m: f"model-{m}") for m in models]
    for s in settings:
        methods += [(f"{s}-stage1", f"`fit` stage 1 ({s})", lambda cam, s=s: f"{s}-stage1"),
                    (f"{s}-adapt", f"`adapt` ({s})", lambda cam, s=s: f"{s}-adapt")]
    rows = []
    for key, label, method_for in methods:
        per = {cam: Scores(method_for(cam)).mean(names) for cam, names in cams.items()}
        if not any(per.values()):
            continue
        done = {c: m for c, m in per.items() if m}
        images = [Scores(method_for(c)).rows[n] for c in done for n in cams[c]]
        rows.append({"method": key, "label": label, "cameras": {c: m and m["psnr"] for c, m in per.items()},
                     "ssim": {c: m and m["ssim"] for c, m in per.items()},
                     "mean_cameras": float(np.mean([m["psnr"] for m in done.values()])) if len(done) == len(cams) else None,
                     "mean_images": float(np.mean([r["psnr"] for r in images])) if len(done) == len(cams) else None,
                     "seconds_per_image": float(np.mean([r["seconds"] for r in images]))})
    return rows


def write(rows: list[dict], cams: dict[str, list[str]], args: argparse.Namespace) -> None:
    best = {cam: best_sigma(cam, names) for cam, names in cams.items()}
    head = ("| method | " + " | ".join(f"{c} ({len(n)})" for c, n in cams.items())
            + " | mean of cameras | all images | s / image |")
    lines = [f"PSNR (dB) on {args.data.name}, per camera; 8-bit outputs, all channels, no crop. CBM3D's best σ per "
             "camera: " + ", ".join(f"{c} {s}" for c, s in best.items())
             + f" (from {', '.join(map(str, SWEEP))}, chosen on {SWEEP_PER_CAMERA} images per camera).", "",
             head, "|---|" + "---:|" * (len(cams) + 3)]
    anchor = next((r for r in rows if r["method"] == "cbm3d-best"), None)
    for r in rows:
        cells = []
        for c in cams:
            v = r["cameras"][c]
            mark = "**" if anchor and v and anchor["cameras"][c] and v > anchor["cameras"][c] and r is not anchor else ""
            cells.append(f"{mark}{v:.2f}{mark}" if v else "—")
        mc, mi = r["mean_cameras"], r["mean_images"]
        lines.append(f"| {r['label']} | " + " | ".join(cells) + f" | {mc:.2f} |" if mc else f"| {r['label']} | "
                     + " | ".join(cells) + " | — |")
        lines[-1] += f" {mi:.2f} |" if mi else " — |"
        lines[-1] += f" {r['seconds_per_image']:.1f} |"
    settings = {r["method"].rsplit("-", 1)[0] for r in rows if r["method"].endswith("-adapt")}
    walls = {s: [_wall(s, c) for c in cams] for s in settings}
    lines += ["", "Bold: above the tuned CBM3D on that camera. `fit`/`adapt` rows: trained per camera on its noisy crops "
              "only; seconds are inference per image. Wall time of each camera's adapt (minutes, "
              "runs/real_cameras/SETTING/CAMERA/wall_seconds): "
              + "; ".join(f"{s}: " + ", ".join(f"{w:.0f}" if w else "—" for w in ws) for s, ws in sorted(walls.items()))]
    lines += levers_table(cams)
    name = "real_cameras" + ("-quick" if args.quick else "")
    (OUT / f"{name}.json").write_text(json.dumps({"data": str(args.data), "best_sigma": best, "rows": rows}, indent=2))
    (OUT / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _wall(setting: str, cam: str) -> float | None:
    f = RUNS / setting / cam / "wall_seconds"
    return float(f.read_text()) / 60 if f.exists() else None


def levers_table(cams: dict[str, list[str]]) -> list[str]:
    """Settings tried while choosing real mode's defaults (results/real_cameras/levers.json): one row each, PSNR per
    camera it was measured on (from the cached per-image scores, or the figure recorded for a subset of images)."""
    path = CACHE / "levers.json"
    if not path.exists():
        return []
    out = ["", "Levers tried for real photos (each on the cameras it was run on; `--quick` runs one camera):", "",
           "| setting | " + " | ".join(cams) + " |", "|---|" + "---:|" * len(cams)]
    for lever in json.loads(path.read_text()):
        cells = []
        for cam, names in cams.items():
            value = Scores(lever["method"]).mean(names) if lever.get("method") else None
            value = value["psnr"] if value else lever.get("values", {}).get(cam)
            cells.append(f"{value:.2f}" if value else "—")
        out.append(f"| {lever['setting']} | " + " | ".join(cells) + " |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a folder with noisy/ and clean/")
    ap.add_argument("--clean", type=Path, default=ROOT.parent / "shared" / "data" / "train" / "color-photos",
                    help="unrelated clean images for distill")
    ap.add_argument("--anchors", action="store_true", help="score noisy, CBM3D (blind, sweep) and the default")
    ap.add_argument("--adapt", action="store_true", help="run `adapt` per camera and score stage 1 and the model")
    ap.add_argument("--setting", default="default", help="name of this adapt setting (its rows and run folders)")
    ap.add_argument("--budget", default="60m", help="adapt's --time-budget per camera")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more adapt options (last on the line)")
    ap.add_argument("--jobs", type=int, default=1, help="cameras adapted side by side")
    ap.add_argument("--threads", type=int, default=1, help="threads per adapt run (OMP_NUM_THREADS)")
    ap.add_argument("--cameras", nargs="*", default=None, help="only these cameras")
    ap.add_argument("--settings", nargs="*", default=None, help="adapt settings to show (default: all cached)")
    ap.add_argument("--quick", action="store_true", help=f"one camera ({QUICK_CAMERA}), 10-minute adapt")
    ap.add_argument("--table", action="store_true", help="only rebuild the table from cached scores")
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=WEIGHTS",
                    help="also score these weights (registry name or file), e.g. a default in training")
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data} not found (PolyU lives in ../shared/data/real-pairs/PolyU)")
    cams = cameras(args.data)
    if args.quick:
        cams = {QUICK_CAMERA: cams[QUICK_CAMERA]}
        if args.budget == "60m":
            args.budget = "10m"
    if args.cameras:
        cams = {c: cams[c] for c in args.cameras}
    if args.anchors:
        anchors(args.data, cams)
    if args.adapt:
        adapt_all(args.data, cams, args)
    settings = args.settings if args.settings is not None else sorted(
        {p.stem.rsplit("-", 1)[0] for p in CACHE.glob("*-adapt.json")})
    models = candidates(args.data, cams, args.model) if args.model else sorted(
        p.stem[len("model-"):] for p in CACHE.glob("model-*.json"))
    write(table(cams, settings, models), cams, args)


if __name__ == "__main__":
    main()
