"""Write benchmarks/README.md: what each benchmark measures, its command, and its current table from results/.

    python -m benchmarks.summary
"""

from __future__ import annotations

import importlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: (module, the tables it writes, in the order the README shows them)
BENCHMARKS = [
    ("real_cameras", ["real_cameras.md"]),
    ("noise_fidelity", ["noise_fidelity.md"]),
    ("pipeline_fidelity", ["pipeline_fidelity.md", "pipeline_fidelity-oracle.md", "pipeline_fidelity-synthetic.md"]),
    ("raw_scenes", ["raw_scenes.md"]),
    ("raw_speed", ["raw_speed.md"]),
    ("quality", ["quality-shipped.md", "quality-shipped-ensemble.md"]),
    ("stopping", ["stopping.md"]),
    ("precision", ["precision.md"]),
    ("fit_quality", ["fit_quality.md"]),
    ("unpaired", ["unpaired.md"]),
    ("speed", ["speed.md"]),
    ("train_speed", ["train_speed-cpu.md", "train_speed-processes.md"]),
    ("tiling", ["tiling-h200.md"]),
    ("gpu_speed", []),
    ("gpu_check", ["gpu_check.md"]),
]
TOOLS = ["side_by_side", "make_example", "device_bundle", "summary"]


def first_line(module: str) -> str:
    doc = importlib.import_module(f"benchmarks.{module}").__doc__ or ""
    return doc.strip().splitlines()[0]


def main() -> None:
    lines = ["# Benchmarks", "",
             "Reusable measurements, each run as `python -m benchmarks.NAME` from the repository root (`--help` lists its "
             "options). Each writes its table to `results/NAME.{md,json}`; this page is made from them by "
             "`python -m benchmarks.summary`. Test data lives outside the repository (`../shared/data`: BSD68, CBSD68, "
             "Set12, the clean training photos, PolyU); the machine each table came from is named in it or below it.", "",
             "| benchmark | what it measures |", "|---|---|"]
    lines += [f"| `{m}` | {first_line(m)} |" for m, _ in BENCHMARKS]
    lines += ["", "Tools: " + "; ".join(f"`{m}` — {first_line(m)}" for m in TOOLS), ""]
    for module, tables in BENCHMARKS:
        for name in tables:
            path = RESULTS / name
            if path.exists():
                lines += [f"## {name[:-3]}", "", path.read_text().strip(), ""]
    (HERE / "README.md").write_text("\n".join(lines))
    print(f"wrote {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
