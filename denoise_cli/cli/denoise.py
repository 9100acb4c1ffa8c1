"""`denoise`: files, folders and pipes through a trained model, one bad file never stopping the batch."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from ..errors import ConfigError
from ._common import write_summary
from ._common import EXIT_FAILED, EXIT_OK, DeviceOpt, EnsembleOpt, error_line, note_line, say, shown, err, explain, fail, flag, reports_errors

STDIO = "-"  # the same marker as batch.STDIO, which this module must not import at start-up (it imports torch)


@reports_errors("interrupted: finished outputs are kept and no partial file was written; the same command with "
                "--skip-existing continues the batch")
def denoise(
    inputs: Annotated[list[str], typer.Argument(metavar="PHOTO", show_default=False,
                                                help="Image files or folders (several allowed); '-' reads one image from stdin.")],
    output: Annotated[Optional[str], typer.Option("--output", "-o", metavar="DIR|-",
                                                  help="Output folder ('-': stdout) \\[default: beside each input, "
                                                       "with --suffix].")] = None,
    suffix: Annotated[Optional[str], typer.Option(metavar="TEXT", help="Added to output names \\[default: _denoised, "
                                                                      "or none with -o DIR].")] = None,
    fmt: Annotated[Optional[Literal["png", "tif", "tiff", "jpg", "jpeg"]], typer.Option(
        "--format", "-f", help="Output format \\[default: the input's; tif for RAW; png for formats it cannot write "
                               "and on stdout].")] = None,
    weights: Annotated[Optional[str], typer.Option(
        "--weights", "-w", metavar="auto|NAME|PATH|hf://…",
        help="auto: each photo gets the camera profile for its camera and ISO (see `profiles`), else the default — "
             "what runs when profiles exist; a registry NAME (see `weights list`), a .safetensors PATH or run folder, "
             "or hf://owner/repo/file.safetensors\\[@revision] \\[default: auto with profiles, else the registry "
             "default].")] = None,
    strength: Annotated[float, typer.Option(
        min=0.0, max=1.0, metavar="S", help="How much of the estimated noise to remove, 0–1: 0.7 removes 70 % of it and keeps 30 % "
                               "of the grain.")] = 1.0,
    device: DeviceOpt = "auto",
    precision: Annotated[Literal["auto", "fp32", "fp16", "bf16"], typer.Option(
        help="Arithmetic. auto: bf16 on CPUs with bf16 units (AVX512-BF16, AMX), where it is faster than fp32 "
             "and the difference is invisible in a photo; fp32 elsewhere. fp16/bf16 on a GPU are faster too.")] = "auto",
    tile: Annotated[Optional[int], typer.Option(
        min=0, metavar="PIXELS", help="Tile side; 0 never tiles \\[default: auto: 1024 for images over 1 MP on the "
                                      "CPU; on a CUDA GPU whole images while they fit in half its free memory].")] = None,
    overlap: Annotated[int, typer.Option(min=0, metavar="PIXELS", help="Context pixels around each tile: 48 keeps the result within 1.5 levels of 255 of an untiled run; 96 makes it exact.")] = 48,
    ensemble: EnsembleOpt = False,
    recursive: Annotated[bool, flag("--recursive", "-r", help="Descend into sub-folders.")] = False,
    overwrite: Annotated[bool, flag("--overwrite", help="Replace existing outputs (inputs are never replaced).")] = False,
    max_pixels: Annotated[float, typer.Option(metavar="MP",
                                              help="Refuse images larger than this many megapixels.")] = 256,
    as_json: Annotated[bool, flag("--json", help="Print a JSON summary (on stderr when stdout carries an "
                                                 "image).")] = False,
    quiet: Annotated[bool, flag("--quiet", "-q", help="No progress bar or notices.")] = False,
    shard: Annotated[Optional[str], typer.Option(
        metavar="K/N", help="Take only the K-th of N shares of the inputs (K from 1), for job arrays (SLURM, GNU "
                            "parallel, xargs); under torchrun each process takes its own share by itself.")] = None,
    skip_existing: Annotated[bool, flag("--skip-existing", help="Count inputs whose output exists as done and skip "
                                                                "them: an interrupted batch continues.")] = False,
) -> None:
    """Denoise images: [cyan]denoise-cli denoise photos/*.png[/], or [cyan]cat a.png | denoise-cli denoise - > b.png[/].

    Outputs keep bit depth (16-bit stays 16-bit), alpha, EXIF and ICC profile. Inputs are never overwritten and outputs are written atomically.

    Many machines: run it under torchrun (each process its own share of the inputs and its own GPU, one summary), or with --shard K/N per job; --skip-existing makes a rerun continue where an interrupted one stopped.

    Exit code: 0 all done, 1 some inputs failed, 2 usage error, 130 interrupted.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..inference.batch import (StdoutClosed, gather, names_a_file, parse_shard, plan, read_ahead, run_batch,
                                   skip_done, summary_line)
    from ..inference.batch import shard as take_shard
    from ..inference.distributed import torchrun_launch
    from ..registry.weights import used_weights

    launch = torchrun_launch()
    if skip_existing and overwrite:
        raise ConfigError("--skip-existing and --overwrite contradict each other: choose one")
    if shard and launch:
        raise ConfigError("--shard is for separate jobs; under torchrun each process takes its share by itself")
    share = parse_shard(shard) if shard else launch.shard if launch else None

    fmt = fmt.replace("tiff", "tif").replace("jpeg", "jpg") if fmt else None
    if not max_pixels > 0:
        raise ConfigError(f"--max-pixels {max_pixels:g}: expected a positive number of megapixels")
    if output not in (None, STDIO) and Path(output).exists() and not Path(output).is_dir() and not names_a_file(output):
        raise ConfigError(f"-o {output} is a file: -o takes a folder, an image file name for a single input, or - "
                          "for stdout")
    items = gather(inputs, recursive=recursive, skip_suffix=suffix if suffix is not None else "_denoised")
    if not items:
        raise ConfigError("no images found in " + ", ".join(inputs))
    if sum(1 for s, _ in items if s == STDIO) > 1:
        raise ConfigError("'-' (stdin) can be given only once")
    if output == STDIO and len(items) > 1:
        raise ConfigError("-o - writes one image to stdout; give a single input")
    jobs = plan(items, output=output, suffix=suffix, fmt=fmt)  # the whole batch: every share plans the same
    if share:
        jobs = take_shard(jobs, *share)
    skipped = []
    if skip_existing:
        jobs, skipped = skip_done(jobs)
    to_stdout = any(j.target == STDIO for j in jobs)
    if to_stdout and sys.stdout is None:
        raise ConfigError("standard output is closed: redirect it to a file or a pipe, or use -o DIR")
    if as_json and not to_stdout and sys.stdout is None:
        raise ConfigError("--json writes to standard output, which is closed: redirect it to a file")
    if to_stdout and sys.stdout.isatty():
        raise ConfigError("refusing to write image data to a terminal; redirect stdout or use -o DIR")
    if not jobs and not launch:  # a share with nothing (left) to do
        say(f"nothing to do: {len(skipped)} output(s) exist already" if skipped else "nothing to do in this share")
        raise typer.Exit(EXIT_OK)
    if jobs and all(j.error for j in jobs) and not launch:  # nothing can run: report it without loading a model
        for j in jobs:
            error_line(f"{j.source}: {j.error}")
        raise typer.Exit(EXIT_FAILED)
    first = read_ahead(jobs[0], overwrite, int(max_pixels * 1e6), skip_existing) if jobs else None  # decoded while torch loads
    # Photos are decoded and encoded on helper threads beside the network: OpenMP threads that sleep between parallel
    # regions instead of spinning leave them the cores (about 8 % faster on a batch of small files, on 2 cores).
    # Read once, when PyTorch loads; a value the user set wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ..api import load_denoiser  # torch is imported here, once there is work to do
    from ..registry.profiles import list_profiles

    if launch:
        from ..inference.distributed import bind_local_gpu

        bind_local_gpu(launch)
        quiet = quiet or launch.rank > 0  # one progress bar: rank 0's

    def load(spec: str | None):
        return load_denoiser(spec, device=device, precision=precision, tile=tile, overlap=overlap, ensemble=ensemble,
                             strength=strength)

    profiles = list_profiles() if weights in (None, "auto") else []
    if weights == "auto" or profiles:  # per photo: its camera's profile, else the default
        from ..inference.choice import ModelChoice

        denoiser = ModelChoice(load, profiles)
    else:
        denoiser = load(weights)

    results = []
    with Progress(TextColumn("[bold]denoise"), BarColumn(), TextColumn("{task.fields[files]}"),
                  TextColumn("{task.fields[name]}"), TimeRemainingColumn(), console=err,
                  disable=quiet or to_stdout or not err.is_terminal, transient=True) as bar:
        task = bar.add_task("denoise", total=len(jobs), name="", files=f"0/{len(jobs)}")
        current = 0

        def on_start(i: int, weights: str | None) -> None:  # weights: the model picked for it, with --weights auto
            nonlocal current
            current = i
            bar.update(task, completed=i, name=shown(Path(jobs[i].source).name + (f" · {weights}" if weights else "")))

        def on_tile(done: int, total: int) -> None:  # progress inside a large photo
            bar.update(task, completed=current + done / total)

        try:
            for res in run_batch(denoiser, jobs, overwrite=overwrite, stdout_format=fmt or "png",
                                 max_pixels=int(max_pixels * 1e6), on_start=on_start, on_tile=on_tile, first=first,
                                 skip_existing=skip_existing):
                results.append(res)
                name = "stdin" if res.source == STDIO else res.source
                if res.skipped:
                    pass
                elif not res.ok:
                    error_line(f"{name}: {explain(res.exception or res.error)}")
                elif not quiet:
                    for n in res.notices + ([f"denoised with {res.weights}"] if res.weights else []):
                        note_line(f"{name}: {n}")
                bar.update(task, files=f"{len(results)}/{len(jobs)}")
        except StdoutClosed as e:
            raise fail(str(e), EXIT_FAILED) from None

    rows = [r.to_dict() for r in results]
    device = str(denoiser.device or "—")
    if launch:  # one summary for all ranks, at rank 0
        from ..inference.distributed import gather_to_rank0

        everyone = gather_to_rank0(launch, (rows, len(skipped), device))
        if everyone is None:
            raise typer.Exit(EXIT_FAILED if any(not r["ok"] for r in rows) else EXIT_OK)
        rows = [r for part, _, _ in everyone for r in part]
        skipped = [None] * sum(n for _, n, _ in everyone)
        device = f"{launch.world} processes ({', '.join(sorted({d for _, _, d in everyone}))})"
        quiet = False
    done = sum(r["ok"] for r in rows)
    late = sum(r["skipped"] for r in rows)  # finished by another run meanwhile
    failed = len(rows) - done - late
    if as_json:
        chosen = {"weights": "auto", "weights_gray": None} if hasattr(denoiser, "pick") else used_weights(weights)
        summary = {"done": done, "failed": failed, "skipped": len(skipped) + late, "device": device, **chosen,
                   "ensemble": ensemble, "strength": strength, "results": rows}
        write_summary(json.dumps(summary, indent=2) + "\n", err.file if to_stdout else sys.stdout)
    elif not quiet and not to_stdout:
        model = "camera profiles where they match, else the default" if hasattr(denoiser, "pick") else \
            f"model {used_weights(weights)['weights']}"
        where = None if output is None else f"into {output}"
        if output is None:
            where = "beside the inputs" + (f" (NAME{suffix if suffix is not None else '_denoised'}.EXT)")
        say(summary_line(done, failed, sum(r["megapixels"] for r in rows if r["ok"]),
                         sum(r["denoise_seconds"] for r in rows if r["ok"]), device, skipped=len(skipped) + late,
                         where=where, model=model))
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)
