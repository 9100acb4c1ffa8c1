"""Helpers shared by the benchmark scripts: where the data lives and cached classical anchors."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Hashable
from pathlib import Path

import torch

from denoise_cli.evaluation.scoring import Row, classical, evaluate, report_stem, summarize, synthetic_pairs, write_report
from denoise_cli.inference.devices import pick_device
from denoise_cli.io import list_images, read_image
from denoise_cli.noise.synthetic import parse_spec

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
FIT_RUNS = ROOT / "runs" / "fit_quality"
CASES = {  # name: (test set, channels, noise, paper D-BSN PSNR, paper MWCNN(unpaired) PSNR)
    "bsd68-awgn25": ("BSD68", 1, "awgn:25", 29.12, 29.38),
    "cbsd68-awgn25": ("CBSD68", 3, "awgn:25", 30.61, 31.40),
    "cbsd68-hg": ("CBSD68", 3, "hg:40,10", 30.56, 31.72),
}


def row_name(case: str, arch: str, *tags: str) -> str:
    """A result row's name: the case, its arch when not the default `small`, then any suffix/variant tags."""
    return case + ("" if arch == "small" else f"-{arch}") + "".join(tags)


def hardware(device: torch.device | str = "cpu") -> str:
    """One line naming the machine a number came from (the GPU's name on CUDA)."""
    line = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, device {device}"
    resolved = pick_device(str(device))  # "auto" names the device it stands for
    if resolved.type == "cuda":
        line += f" ({torch.cuda.get_device_name(resolved)})"
    return line


def classical_scores(set_name: str, noise: str, seed: int, limit: int | None = None, *,
                     cached_only: bool = False) -> dict | None:
    """Mean PSNR/SSIM of BM3D (gray) / CBM3D (colour) on a seeded noisy test set.

    CBM3D takes ~25 s per 481×321 image on a small CPU, so reports are cached in
    benchmarks/results/eval under the same name `denoise-cli eval --method bm3d` writes, and
    reused when the seed and image count match. ``cached_only`` returns None instead of running.
    """
    stem = RESULTS / "eval" / (report_stem(set_name, noise, "bm3d") + (f"_first{limit}" if limit else ""))
    cached = stem.with_suffix(".json")
    count = len(list_images(DATA / "test" / set_name)[:limit])
    if cached.exists():
        report = json.loads(cached.read_text())
        if report.get("seed") == seed and report["mean"]["images"] == count:
            return report["mean"]
    if cached_only:
        return None
    rows = evaluate(synthetic_pairs(DATA / "test" / set_name, noise, seed, limit), classical("bm3d", parse_spec(noise)))
    write_report(rows, {"method": "bm3d", "data": str(DATA / "test" / set_name), "noise": noise, "seed": seed}, stem)
    return summarize(rows)


def merge_rows(path: Path, rows: list[dict], key: str | Callable[[dict], Hashable] = "case") -> list[dict]:
    """Rows of an earlier JSON report at `path`, replaced or extended by `rows` (matched on `key`: a
    field name, or a function of the row for compound keys such as (checkpoint, case))."""
    of = (lambda r: r[key]) if isinstance(key, str) else key
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    new_keys = {of(r) for r in rows}
    return [r for r in old if of(r) not in new_keys] + rows


def write_table(name: str, rows: list[dict], lines: list[str]) -> None:
    """Write results/NAME.json (the rows) and results/NAME.md (the Markdown lines), and print the table."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"rows": rows}, indent=2))
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def score_saved(pairs: list[tuple[str, object, object]], folder: Path) -> list[Row]:
    """Score outputs already written as FOLDER/STEM.png (a fit run's stage-1 images) against `pairs`."""
    names = iter([name for name, _, _ in pairs])
    return evaluate(iter(pairs), lambda _: read_image(folder / f"{Path(next(names)).stem}.png").pixels)
