"""`weights list | download | export`: the registry of trained models, the Hub, and publishing a new one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import shown, EXIT_FAILED, EXIT_OK, Command, Group, error_line, say, flag, reports_errors

app = typer.Typer(no_args_is_help=True, cls=Group, help="List, download and export model weights.")


@app.command("list", cls=Command)
@reports_errors()
def weights_list(as_json: Annotated[bool, flag("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Show the models: what each is for, which one runs by default, where its file is, and how it measured."""
    from rich.console import Console
    from rich.table import Table

    from ..registry.weights import registry_rows

    rows = registry_rows()
    if as_json:
        print(json.dumps([{**r, "scores": None, "psnr": "; ".join(f"{k} {p:.2f} dB" for k, p in r["scores"])}
                          for r in rows], indent=2))
        return
    table = Table(title="denoise-cli models (--weights NAME)")
    table.add_column("name", no_wrap=True)  # what a user types: never cut short
    table.add_column("use it for")
    table.add_column("file", no_wrap=True)
    table.add_column("measured PSNR (dB)", no_wrap=True)
    for r in rows:
        role = "\n[bold]default for colour[/]" if r["default"] else "\n[bold]default for gray[/]" if r["default_gray"] \
            else "\n[bold]RAW model for --raw-domain[/]" if r["default_raw"] else ""
        where = "built in" if r["source"] == "embedded" else f"Hub, {r['size_mb']} MB" + (", downloaded" if r["local"] else "")
        kind = {1: "gray images", 3: "colour images", 4: "camera RAW (Bayer planes)"}.get(r["channels"], "images")
        use = r["use"] or f"{kind}, {r['noise']} noise"
        table.add_row(shown(r["name"]) + role, shown(use), where,
                      "\n".join(f"{shown(k)} {p:.2f}" for k, p in r["scores"]) or "—")
    Console().print(table)


@app.command("download", cls=Command)
@reports_errors()
def weights_download(
    names: Annotated[Optional[list[str]], typer.Argument(metavar="NAME",
                                                         help="Registry names; none: all Hub entries.")] = None,
    force: Annotated[bool, flag("--force", help="Download again even if cached.")] = False,
) -> None:
    """Fetch weights from the Hugging Face Hub into its cache and check their sha256."""
    from ..errors import WeightsError
    from ..registry.weights import fetch, load_registry

    reg = load_registry()
    entries = [reg.get(n) for n in names] if names else [e for e in reg.entries.values() if e.on_hub]
    failed = 0
    for e in entries:
        try:
            say(f"{e.name}: ok ({fetch(e, force=force)})")
        except WeightsError as ex:
            error_line(f"{ex}")
            failed += 1
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


@app.command("export", cls=Command)
@reports_errors()
def weights_export(
    model: Annotated[Path, typer.Argument(metavar="MODEL_DIR", show_default=False,
                                          help="A distill output folder (holding model.safetensors).")],
    dest: Annotated[Path, typer.Argument(metavar="DEST", show_default=False,
                                         help="Folder to write: weights, config.json, README.md and entry.toml (a "
                                              "weights.toml entry with the written file's sha256).")],
    upload: Annotated[Optional[str], typer.Option(metavar="OWNER/NAME",
                                                  help="Also upload to this Hub repo; needs a token. DEST/entry.toml "
                                                       "is then pinned to the commit.")] = None,
    half: Annotated[bool, flag("--half", help="Store the weights as fp16 (half the file size).")] = False,
) -> None:
    """Write a folder ready for the Hugging Face Hub (model card with provenance and measurements)."""
    from ..registry.export import export_model, pin_revision, upload_folder

    out = export_model(model, dest, half=half, repo_id=upload)
    say(f"exported to {out}")
    if upload:
        revision = upload_folder(out, upload)
        say(f"uploaded {upload} at {revision}; the weights.toml entry pinned to it: {pin_revision(out, revision)}")
