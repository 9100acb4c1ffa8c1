"""The `denoise-cli` command: parses arguments, calls the library, prints. Nothing else lives here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from . import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Denoise photographs with networks that learn a camera's noise from noisy pictures alone "
                       "(Wu et al., Unpaired Learning of Deep Image Denoising, ECCV 2020).")
weights_app = typer.Typer(no_args_is_help=True, help="List and download registered model weights.")
app.add_typer(weights_app, name="weights")
err = Console(stderr=True)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print one 'error:' line on stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        print(f"denoise-cli {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Show the version and exit.")] = False) -> None:
    """Denoise photographs; learn a camera's noise from its own noisy pictures."""


WeightsOpt = Annotated[Optional[str], typer.Option(
    "--weights", "-w", help="Registry NAME (see `weights list`), a .safetensors PATH or run folder, "
                            "or hf://owner/repo/file.safetensors[@revision]. Default: the registry default.")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps.")]


@app.command()
def denoise(
    inputs: Annotated[list[str], typer.Argument(help="Image files or folders; '-' reads one image from stdin.",
                                                show_default=False)],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output folder ('-': stdout). "
                      "Default: beside each input with --suffix.")] = None,
    suffix: Annotated[Optional[str], typer.Option(help="Added to output names \\[default: _denoised, "
                      "or none with -o DIR].")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="Output format: png, tif or jpg "
                   "\\[default: the input's; tif for RAW; png on stdout].")] = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    precision: Annotated[str, typer.Option(help="fp32, or fp16/bf16 on a GPU.")] = "fp32",
    tile: Annotated[Optional[int], typer.Option(help="Tile side in pixels; 0 never tiles \\[default: auto, "
                    "1024 for images over 1 MP].")] = None,
    overlap: Annotated[int, typer.Option(help="Context pixels around each tile.")] = 96,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs (inputs are never replaced).")] = False,
    max_pixels: Annotated[float, typer.Option(help="Refuse images larger than this many megapixels.")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary (stderr when stdout "
                       "carries an image).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or notices.")] = False,
) -> None:
    """Denoise images: [cyan]denoise-cli denoise photos/*.png[/], or [cyan]cat a.png | denoise-cli denoise - > b.png[/].

    Outputs keep bit depth (16-bit stays 16-bit), alpha, EXIF and ICC profile. Inputs are never overwritten and outputs are written atomically.

    Exit code: 0 all done, 1 some inputs failed, 2 usage error.
    """
    from .api import load_denoiser
    from .batch import STDIO, gather, plan, run_job
    from .checkpoint import CheckpointError
    from .inference import DeviceError
    from .weights import WeightsError

    if fmt and fmt.lower().lstrip(".") not in ("png", "tif", "tiff", "jpg", "jpeg"):
        raise fail(f"--format {fmt}: use png, tif or jpg")
    fmt = fmt.lower().lstrip(".") if fmt else None
    items = gather(inputs, recursive=recursive, skip_suffix=suffix if suffix is not None else "_denoised")
    if not items:
        raise fail("no images found in " + ", ".join(inputs))
    if sum(1 for s, _ in items if s == STDIO) > 1:
        raise fail("'-' (stdin) can be given only once")
    if output == STDIO and len(items) > 1:
        raise fail("-o - writes one image to stdout; give a single input")
    jobs = plan(items, output=output, suffix=suffix, fmt=fmt)
    to_stdout = any(j.target == STDIO for j in jobs)
    if to_stdout and sys.stdout.isatty():
        raise fail("refusing to write image data to a terminal; redirect stdout or use -o DIR")
    try:
        denoiser = load_denoiser(weights, device=device, precision=precision, tile=tile, overlap=overlap)
    except (WeightsError, CheckpointError, DeviceError) as e:
        raise fail(str(e))

    results = []
    show = not quiet and not to_stdout
    with Progress(TextColumn("[bold]denoise"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[name]}"),
                  TimeRemainingColumn(), console=err, disable=not show, transient=True) as bar:
        task = bar.add_task("denoise", total=len(jobs), name="")
        for job in jobs:
            bar.update(task, name=Path(job.source).name)
            try:
                res = run_job(denoiser, job, overwrite=overwrite, stdout_format=fmt or "png",
                              max_pixels=int(max_pixels * 1e6))
            except KeyboardInterrupt:
                err.print("interrupted: finished outputs are kept; no partial file was written")
                raise typer.Exit(130)
            results.append(res)
            name = "stdin" if job.source == STDIO else job.source
            if res.ok:
                if not quiet:
                    for n in res.notices:
                        err.print(f"[yellow]note:[/] {name}: {n}", highlight=False, soft_wrap=True)
            else:
                err.print(f"[bold red]error:[/] {name}: {res.error}", highlight=False, soft_wrap=True)
            bar.advance(task)

    done = sum(r.ok for r in results)
    failed = len(results) - done
    if as_json:
        summary = {"done": done, "failed": failed, "device": str(denoiser.device),
                   "results": [r.to_dict() for r in results]}
        (err.file if to_stdout else sys.stdout).write(json.dumps(summary, indent=2) + "\n")
    elif not quiet and not to_stdout:
        mp = sum(r.megapixels for r in results)
        secs = sum(r.seconds for r in results)
        err.print(f"{done} denoised, {failed} failed" + (f" · {mp / secs:.2f} MP/s on {denoiser.device}" if done else ""))
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


@weights_app.command("list")
def weights_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Show registered weights: name, noise, size, whether they are local, measured PSNR."""
    from .weights import cached_path, load_registry

    reg = load_registry()
    rows = []
    for e in reg.entries.values():
        local = cached_path(e)
        psnr = "; ".join(f"{k} {v['psnr']:.2f} dB" for k, v in e.metrics.items() if "psnr" in v)
        rows.append({"name": e.name, "default": e.name == reg.default, "channels": e.channels, "noise": e.noise,
                     "size_mb": round(e.size / 1e6, 2), "source": "embedded" if e.embedded else f"hf://{e.repo_id}",
                     "local": bool(local and local.exists()), "psnr": psnr})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="denoise-cli weights")
    for col in ("name", "kind", "size", "source", "cached?", "measured PSNR"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"] + (" (default)" if r["default"] else ""),
                      f"{'color' if r['channels'] == 3 else 'gray'} {r['noise']}", f"{r['size_mb']} MB",
                      r["source"], "yes" if r["local"] else "no", r["psnr"] or "—")
    Console().print(table)


@weights_app.command("download")
def weights_download(
    names: Annotated[list[str], typer.Argument(help="Registry names; none: all Hub entries.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if cached.")] = False,
) -> None:
    """Fetch weights from the Hugging Face Hub into its cache and check their sha256."""
    from .weights import WeightsError, fetch, load_registry

    reg = load_registry()
    try:
        entries = [reg.get(n) for n in names] if names else [e for e in reg.entries.values() if e.on_hub]
    except WeightsError as e:
        raise fail(str(e))
    failed = 0
    for e in entries:
        try:
            path = fetch(e, force=force)
            err.print(f"{e.name}: ok ({path})", highlight=False)
        except WeightsError as ex:
            err.print(f"[bold red]error:[/] {ex}", highlight=False, soft_wrap=True)
            failed += 1
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)
