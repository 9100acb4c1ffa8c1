"""Write weights.toml entries (the registry's format) for trained and exported models.

One writer for `distill`'s entry.toml, `weights export` and the benchmarks, so every entry quotes
its strings the same way: a Windows path or a quote in a description still gives valid TOML."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

from ..io import write_bytes_atomic
from .weights import sha256_file

#: Keys written as [models.NAME.KEY] tables; the others stay on one line (inline tables for dicts).
TABLES = ("training", "metrics")


def toml_value(value: object) -> str:
    """One TOML value: a basic string, integer, float, boolean or (for a dict) an inline table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML entries take finite numbers, not {value}")
        return repr(value)
    if isinstance(value, str):
        # JSON's escapes are a subset of TOML's basic-string escapes; DEL must be escaped in TOML only
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_key(key: str) -> str:
    """A bare key when TOML allows one, else a quoted key ("CBSD68/awgn:25")."""
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else toml_value(key)


def dump_entry(name: str, entry: dict, *, comments: dict[str, str] | None = None) -> str:
    """Entry ``name`` as weights.toml text: [models.NAME], then its training and metrics tables.
    ``comments`` puts a ``# line`` at the top of a table (e.g. how to fill in empty metrics)."""
    comments = comments or {}
    head = f"models.{toml_key(name)}"
    lines = [f"[{head}]"] + [f"{toml_key(k)} = {toml_value(v)}" for k, v in entry.items() if k not in TABLES]
    for table in TABLES:
        if table in entry or table in comments:
            lines += ["", f"[{head}.{table}]"] + ([f"# {comments[table]}"] if table in comments else [])
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in entry.get(table, {}).items()]
    return "\n".join(lines) + "\n"


def read_entry(path: Path) -> tuple[str, dict]:
    """The (name, entry) of an entry.toml holding one model."""
    models = tomllib.loads(Path(path).read_text()).get("models", {})
    if len(models) != 1:
        raise ValueError(f"{path}: expected one [models.NAME] entry, found {len(models)}")
    return next(iter(models.items()))


def write_entry(path: Path, name: str, entry: dict, **kwargs) -> None:
    """Write ``dump_entry`` to ``path`` atomically (a crash leaves the old file whole)."""
    write_bytes_atomic(Path(path), dump_entry(name, entry, **kwargs).encode())


def file_fields(weights: Path, *, half: bool = False) -> dict:
    """The entry fields that describe one weights file: format, sha256 and size."""
    return {"format": "safetensors (fp16)" if half else "safetensors", "sha256": sha256_file(weights),
            "size": Path(weights).stat().st_size}


def add_metrics(path: Path, test: str, scores: dict) -> None:
    """Record one measured test (e.g. "CBSD68/awgn:25" → psnr, ssim, images, seed) in an entry.toml."""
    name, entry = read_entry(path)
    entry.setdefault("metrics", {})[test] = scores
    write_entry(path, name, entry)
