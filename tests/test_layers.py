"""The package's layers (docs/architecture.md): a module imports only from its own layer or from lower ones, and
importing the CLI does not import torch (so --help answers at once)."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "denoise_cli"
LAYERS = ["errors", "progress", "io", "models", "noise", "registry", "inference", "evaluation", "training", "api", "cli"]


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


def _module_graph() -> dict[str, set[str]]:
    """Each module of the package → the package modules it imports (anywhere in the file)."""
    names = {".".join(("denoise_cli", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
             for p in PACKAGE.rglob("*.py")}
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        me = ".".join(("denoise_cli", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        targets = set()
        for t in _imports(path):
            while t and t not in names:  # `from .x import name`: the module is x, or its package
                t = t.rpartition(".")[0]
            if t and t != me and t != "denoise_cli":
                targets.add(t)
        graph[me] = targets
    return graph


def test_no_import_circles():
    graph = _module_graph()
    seen, on_path, circles = set(), [], []

    def visit(m: str) -> None:
        if m in on_path:
            circles.append(on_path[on_path.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        on_path.append(m)
        for t in sorted(graph.get(m, ())):
            if not t.startswith(m + "."):  # a package's __init__ importing its own modules is no circle
                visit(t)
        on_path.pop()

    for m in sorted(graph):
        visit(m)
    assert not circles, circles


def test_the_architecture_doc_names_every_module():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    missing = [str(p.relative_to(PACKAGE).with_suffix("")) for p in PACKAGE.rglob("*.py")
               if p.stem not in ("__init__", "__main__") and p.stem not in doc]
    assert not missing, missing
