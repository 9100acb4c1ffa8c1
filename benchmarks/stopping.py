"""Does the reference-free score rank checkpoints like the true PSNR? One fit (and optionally a distill after it) per
case, the weights kept at every score; afterwards each kept checkpoint is scored against the references.

    python -m benchmarks.stopping --case bsd68-awgn25 --budget 15m
    python -m benchmarks.stopping --case cbsd68-hg --budget 15m
    python -m benchmarks.stopping --case polyu-Canon600D --budget 15m --distill 10m
    python -m benchmarks.stopping --case cbsd68-hg --rescore --fusion auto   # again, as today's fit scores and fuses
    python -m benchmarks.stopping --table          # results/stopping.{md,json} from the cases run so far

Per case and stage: Spearman's rank correlation between score and true PSNR over all scored checkpoints and over
those that count for keeping the best (fit: from phase C on), the true PSNR of the checkpoint the run kept, and the
best true PSNR among the counted ones. `fit`/`distill` see only the noisy photos; references are read here, after
training, for measuring only. Runs go to runs/stopping/CASE (resumable per stage: delete a stage's folder to redo it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from denoise_cli.evaluation.metrics import psnr, to_255
from denoise_cli.evaluation.scoring import synthetic_pairs
from denoise_cli.io import Photo, list_images, read_image, to_channels, write_image
from denoise_cli.models.mwcnn import build_mwcnn
from denoise_cli.training.distill import DistillConfig, distill, saved_distill_config
from denoise_cli.training.fit import fit, load_noisy, score_levels
from denoise_cli.training.fit_config import FitConfig, saved_config
from denoise_cli.training.stage1 import Stage1
from denoise_cli.training.pixel_shuffle import FACTOR
from denoise_cli.training.self_score import ScoreLog, holdout
from denoise_cli.training.fit_run import FitRun
from denoise_cli.training.runs import Budget, Run, parse_duration

from .common import DATA, RESULTS, ROOT, hardware

RUNS = ROOT / "runs" / "stopping"
POLYU = DATA / "real-pairs" / "PolyU"
SYNTHETIC = {"bsd68-awgn25": ("BSD68", "awgn:25", 1), "cbsd68-hg": ("CBSD68", "hg:40,10", 3)}
CLEAN_TRAIN = DATA / "train"


def case_data(case: str, images: int | None) -> tuple[Path, dict[str, np.ndarray], str]:
    """The noisy folder `fit` is given (the first ``images`` of the set), the references by file name, the fit mode."""
    folder = RUNS / case / "noisy"
    refs: dict[str, np.ndarray] = {}
    if case in SYNTHETIC:
        name, spec, channels = SYNTHETIC[case]
        for fname, clean, noisy in synthetic_pairs(DATA / "test" / name, spec, 0, images):
            stem = Path(fname).stem
            refs[stem] = to_channels(clean, channels)
            if not (folder / f"{stem}.png").exists():
                write_image(Photo(to_channels(noisy, channels)), folder / f"{stem}.png")
        return folder, refs, "synthetic"
    camera = case.split("-", 1)[1]
    folder.mkdir(parents=True, exist_ok=True)
    for p in [p for p in list_images(POLYU / "noisy") if p.name.startswith(camera + "_")][:images]:
        if not (folder / p.name).exists():
            (folder / p.name).symlink_to(p.resolve())
        refs[p.stem] = read_image(POLYU / "clean" / p.name).pixels
    return folder, refs, "real"


def keep_weights(folder: Path):
    """An on_score hook writing every scored checkpoint's weights to folder/STEP.pt."""
    folder.mkdir(parents=True, exist_ok=True)

    def hook(step: int, score: float, modules: dict[str, torch.nn.Module]) -> None:
        torch.save({name: {k: v.detach().clone() for k, v in m.state_dict().items()} for name, m in modules.items()},
                   folder / f"{step}.pt")
    return hook


def true_psnr(denoise, noisy_dir: Path, refs: dict[str, np.ndarray], count: int | None) -> float:
    """Mean PSNR of the 8-bit outputs against the references, on ``count`` of the images spread evenly (all: None)."""
    files = list_images(noisy_dir)
    if count and count < len(files):
        files = [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]
    values = []
    for p in files:
        y = to_channels(read_image(p).pixels, refs[p.stem].shape[2])
        values.append(psnr(to_255(refs[p.stem]), to_255(denoise(y))))
    return float(np.mean(values))


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    def ranks(v: list[float]) -> np.ndarray:
        v = np.asarray(v)
        order = v.argsort()
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for x in np.unique(v):
            r[v == x] = r[v == x].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")


def rescored(records: list[dict], snapshots: Path, score_of, tag: str = "") -> list[dict]:
    """The records with each checkpoint's score taken again by the current code (``score_of(state)``), cached."""
    cache = snapshots / f"rescored{tag}.json"
    done = json.loads(cache.read_text()) if cache.exists() else {}
    out = []
    for r in records:
        key = str(r["step"])
        if key not in done and (snapshots / f"{key}.pt").exists():
            done[key] = score_of(torch.load(snapshots / f"{key}.pt", weights_only=True))
            cache.write_text(json.dumps(done))
        out.append({**r, "score": done.get(key, r["score"])})
    return out


def evaluate_stage(run: Run, snapshots: Path, counts_from: float, make, noisy: Path, refs: dict[str, np.ndarray],
                   count: int | None, score_of=None, tag: str = "") -> dict:
    """True PSNR of every kept checkpoint, next to its score; ``make(state)`` gives a denoise function;
    ``score_of(state)``, when given, takes the scores again with the current code."""
    records = [r for r in run.records() if "score" in r]
    if score_of is not None:
        records = rescored(records, snapshots, score_of, tag)
    cache = snapshots / f"true_psnr-{count or 'all'}{tag}.json"
    done = json.loads(cache.read_text()) if cache.exists() else {}
    for r in records:
        key = str(r["step"])
        if key not in done and (snapshots / f"{key}.pt").exists():
            done[key] = true_psnr(make(torch.load(snapshots / f"{key}.pt", weights_only=True)), noisy, refs,
                                  count)
            cache.write_text(json.dumps(done))
            print(f"  step {key}: score {r['score']:.3f}, true {done[key]:.3f}", flush=True)
    points = [(r["progress"], r["score"], done[str(r["step"])], r["step"], bool(r.get("start")))
              for r in records if str(r["step"]) in done]
    counted = [p for p in points if p[0] >= counts_from or p[4]]
    log = ScoreLog([{"progress": p, "score": s, "start": st} for p, s, _, _, st in points], counts_from=counts_from)
    kept = max(counted, key=lambda p: p[1]) if counted else None
    return {
        "checkpoints": len(points), "counted": len(counted),
        "spearman_all": spearman([p[1] for p in points], [p[2] for p in points]),
        "spearman_counted": spearman([p[1] for p in counted], [p[2] for p in counted]),
        "kept_step": kept[3] if kept else None, "kept_true": kept[2] if kept else None,
        "best_true_counted": max(p[2] for p in counted) if counted else None,
        "best_true_all": max(p[2] for p in points) if points else None,
        "best_score": log.best,
        "images_scored": count or len(refs),
        "points": [{"progress": p, "score": s, "true": t, "step": st, "start": a} for p, s, t, st, a in points],
    }


def run_case(case: str, budget: str, distill_budget: str | None, images: int | None = None,
             eval_images: int | None = None, rescore: bool = False, fusion: str | None = None) -> dict:
    """Fit (and distill) once for the case, keeping every scored checkpoint; then rank them by true PSNR."""
    noisy, refs, mode = case_data(case, images)
    device = torch.device("cpu")
    fit_run = Run(RUNS / case / "fit")
    snaps = RUNS / case / "fit-checkpoints"
    channels = next(iter(refs.values())).shape[2]
    t0 = time.time()
    if not fit_run.exists() or not fit_run.finished():
        fit(noisy, fit_run, None if fit_run.exists() else FitConfig(mode=mode, channels=channels),
            Budget(None, parse_duration(budget)), device, on_score=keep_weights(snaps))
    cfg = saved_config(fit_run)
    if fusion:  # score and denoise each checkpoint as a fit with this fusion setting would
        cfg.fusion = fusion
    images = [to_channels(p.pixels, cfg.channels) for p in load_noisy(noisy)[1]]
    _, held = holdout(images, Stage1(cfg, device).holdout_rows(), align=2 * FACTOR if cfg.mode == "real" else 1)
    levels = score_levels(images, cfg.mode)

    def loaded(state: dict) -> Stage1:
        stage = Stage1(cfg, device)
        for name, m in stage.modules.items():
            m.load_state_dict(state[name])
            m.eval()
        stage.choose_fusion(held, levels)  # what fit does once training ends
        return stage

    score_of = (lambda state: loaded(state).score(held, levels)) if rescore else None
    tag = f"-{fusion}" if fusion else ""
    result = {"case": case, "fit_budget": budget, "rescored": rescore, "fusion": cfg.fusion,
              "fit": evaluate_stage(fit_run, snaps, cfg.phase_c, lambda st: loaded(st).denoise, noisy, refs,
                                    eval_images, score_of, tag)}
    if distill_budget:
        out = Run(RUNS / case / "model")
        dsnaps = RUNS / case / "distill-checkpoints"
        if not out.exists() or not out.finished():
            clean = [] if mode == "real" else [CLEAN_TRAIN / ("gray-Train400" if channels == 1 else "color-photos")]
            dcfg = saved_distill_config(out) if out.exists() else DistillConfig(fit_run=str(fit_run.path),
                                                                                clean_dir=clean)
            distill(dcfg, out, Budget(None, parse_duration(distill_budget)), device, fit=FitRun(fit_run.path),
                    on_score=keep_weights(dsnaps))

        def mwcnn(state: dict):
            model = build_mwcnn(channels, "small")
            model.load_state_dict(state["model"])
            model.eval()

            def run(y: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    x = model(torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1)))[None])
                return x[0].clamp(0, 1).numpy().transpose(1, 2, 0)
            return run

        from denoise_cli.training.distill import SCORE_FROM

        result["distill_budget"] = distill_budget
        result["distill"] = evaluate_stage(out, dsnaps, SCORE_FROM, mwcnn, noisy, refs, eval_images)
    result["minutes"] = round((time.time() - t0) / 60, 1)
    return result


def write_table() -> None:
    """results/stopping.{md,json} from every case's result.json."""
    rows = [json.loads(p.read_text()) for p in sorted(RUNS.glob("*/result*.json"))]
    lines = ["Reference-free score against the true PSNR, per run: Spearman's rank correlation over the scored "
             "checkpoints (all / those counted for keeping the best), and the kept checkpoint's true PSNR against the "
             "best counted one's. One run per row, 1 CPU thread; the references are read only for this table.", "",
             "| case | stage | fusion | budget | checkpoints | Spearman all | Spearman counted | kept (dB) | best (dB) | "
             "kept − best |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        for stage in ("fit", "distill"):
            s = r.get(stage)
            if not s or s["kept_true"] is None:
                continue
            fused = r.get("fusion", "bayes") if stage == "fit" else ""
            lines.append(f"| {r['case']} | {stage} | {fused} | {r.get(stage + '_budget', '')} | {s['checkpoints']} | "
                         f"{s['spearman_all']:.2f} | {s['spearman_counted']:.2f} | {s['kept_true']:.2f} | "
                         f"{s['best_true_counted']:.2f} | {s['kept_true'] - s['best_true_counted']:+.2f} |")
    (RESULTS / "stopping.json").write_text(json.dumps({"machine": hardware(), "rows": rows}, indent=2))
    (RESULTS / "stopping.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", help="bsd68-awgn25, cbsd68-hg or polyu-CAMERA (e.g. polyu-Canon600D)")
    ap.add_argument("--budget", default="15m", help="fit's time budget")
    ap.add_argument("--distill", metavar="DURATION", help="also distill for this long and rank its checkpoints")
    ap.add_argument("--images", type=int, help="only the first N images of the set (a quick try)")
    ap.add_argument("--eval-images", type=int, help="measure the true PSNR on N of the images, spread evenly (stage 1 "
                    "on a CPU takes seconds per image and checkpoint)")
    ap.add_argument("--rescore", action="store_true", help="take fit's scores again from the kept checkpoints with "
                    "the current code (after a change to the score)")
    ap.add_argument("--fusion", choices=["auto", "bayes", "local"], help="stage 1's fusion for the rescore (default: "
                    "the run's own)")
    ap.add_argument("--table", action="store_true", help="only write the table from the cases run so far")
    args = ap.parse_args()
    if args.case and not args.table:
        result = run_case(args.case, args.budget, args.distill, args.images, args.eval_images, args.rescore,
                          args.fusion)
        (RUNS / args.case / f"result{'-' + args.fusion if args.fusion else ''}.json").write_text(json.dumps(result, indent=2))
    write_table()


if __name__ == "__main__":
    main()
