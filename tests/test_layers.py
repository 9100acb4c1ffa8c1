"""The package's layers (docs/architecture.md): a module imports only from its own layer or from lower ones, and
importing the CLI does not import torch (so --help answers at once)."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "denoise_cli"
LAYERS = ["errors", "io", "models", "noise", "registry", "inference", "evaluation", "training", "api", "cli"]


def _imports(path: Path) -> list[str]:
    rel = path.relative_to(PACKAGE).with_suffix("")
    package = ["denoise_cli", *rel.parts[:-1]]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)]
            found.append(".".join(base + ([node.module] if node.module else [])))
    return found


def test_no_module_imports_from_a_higher_layer():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        own = path.relative_to(PACKAGE).with_suffix("").parts[0]
        if own not in LAYERS:
            continue
        for target in _imports(path):
            layer = target.split(".")[1] if "." in target else None
            if layer in LAYERS and LAYERS.index(layer) > LAYERS.index(own):
                wrong.append(f"{path.relative_to(PACKAGE)} → {target}")
    assert not wrong, wrong


def test_the_cli_imports_without_torch():
    code = "import sys, denoise_cli.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
