"""`denoise`: files, folders and pipes through a trained model, one bad file never stopping the batch. The command
parses its options, calls api.denoise_batch and prints each file's outcome and the summary."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Literal, Optional

import typer

from ..errors import ConfigError
from ._common import (EXIT_FAILED, EXIT_OK, DeviceOpt, EnsembleOpt, RichReporter, error_line, explain, flag, note_line,
                      reports_errors, say, write_summary)

InputsArg = Annotated[list[str], typer.Argument(metavar="PHOTO", show_default=False, help="Image files or folders (several allowed); '-' reads one image from stdin.")]
OutputOpt = Annotated[Optional[str], typer.Option("--output", "-o", metavar="DIR|FILE|-", help="Output folder, a file name for a single input, or - for stdout \\[default: beside each input, with --suffix].")]
SuffixOpt = Annotated[Optional[str], typer.Option(metavar="TEXT", help="Added to output names \\[default: _denoised, or none with -o DIR].")]
FormatOpt = Annotated[Optional[Literal["png", "tif", "tiff", "jpg", "jpeg"]], typer.Option("--format", "-f", help="Output format \\[default: the input's; tif for RAW; png for formats it cannot write and on stdout].")]
WeightsAutoOpt = Annotated[Optional[str], typer.Option("--weights", "-w", metavar="auto|NAME|PATH|hf://…", help="auto: each photo gets the camera profile for its camera and ISO (see `profiles`), else the default — what runs when profiles exist; a registry NAME (see `weights list`), a .safetensors PATH or run folder, or hf://owner/repo/file.safetensors\\[@revision] \\[default: auto with profiles, else the registry default].")]
StrengthOpt = Annotated[float, typer.Option(min=0.0, max=1.0, metavar="S", help="How much of the estimated noise to remove, 0–1: 0.7 removes 70 % of it and keeps 30 % of the grain.")]
PrecisionOpt = Annotated[Literal["auto", "fp32", "fp16", "bf16"], typer.Option(help="Arithmetic. auto: bf16 on CPUs with bf16 units (AVX512-BF16, AMX), where it is faster than fp32 and the difference is invisible in a photo; fp32 elsewhere. fp16/bf16 on a GPU are faster too.")]
TileOpt = Annotated[Optional[int], typer.Option(min=0, metavar="PIXELS", help="Tile side; 0 never tiles \\[default: auto: 768 for images over 1 MP on the CPU; on a CUDA GPU whole images while they fit in half its free memory].")]
OverlapOpt = Annotated[int, typer.Option(min=0, metavar="PIXELS", help="Context pixels around each tile: 48 keeps the result within 1.5 levels of 255 of an untiled run; 96 makes it exact.")]
RecursiveOpt = Annotated[bool, flag("--recursive", "-r", help="Descend into sub-folders.")]
OverwriteOpt = Annotated[bool, flag("--overwrite", help="Replace existing outputs (inputs are never replaced).")]
MaxPixelsOpt = Annotated[float, typer.Option(metavar="MP", help="Refuse images larger than this many megapixels.")]
JsonOpt = Annotated[bool, flag("--json", help="Print a JSON summary (on stderr when stdout carries an image).")]
QuietOpt = Annotated[bool, flag("--quiet", "-q", help="No progress bar or notices.")]
ShardOpt = Annotated[Optional[str], typer.Option(metavar="K/N", help="Take only the K-th of N shares of the inputs (K from 1), for job arrays (SLURM, GNU parallel, xargs); under torchrun each process takes its own share by itself.")]
RawDomainOpt = Annotated[Optional[bool], typer.Option("--raw-domain/--no-raw-domain", show_default=False, metavar="", help="Camera RAW files: remove the noise from the sensor data before demosaicking — with the file's RAW camera profile (see `adapt`), else the RAW model (blind); --no-raw-domain develops first and denoises the photo \\[default: before demosaicking where a RAW profile matches the file or --raw-weights is given, else developed first].")]
RawWeightsOpt = Annotated[Optional[str], typer.Option("--raw-weights", metavar="NAME|PATH", help="The RAW model \\[default: the registry's RAW default].")]
SkipOpt = Annotated[bool, flag("--skip-existing", help="Count inputs whose output exists as done and skip them: an interrupted batch continues.")]


@reports_errors("interrupted: finished outputs are kept and no partial file was written; the same command with "
                "--skip-existing continues the batch")
def denoise(inputs: InputsArg, output: OutputOpt = None, suffix: SuffixOpt = None, fmt: FormatOpt = None,
            weights: WeightsAutoOpt = None, strength: StrengthOpt = 1.0, device: DeviceOpt = "auto",
            precision: PrecisionOpt = "auto", tile: TileOpt = None, overlap: OverlapOpt = 48,
            ensemble: EnsembleOpt = False, recursive: RecursiveOpt = False, overwrite: OverwriteOpt = False,
            max_pixels: MaxPixelsOpt = 256, as_json: JsonOpt = False, quiet: QuietOpt = False, shard: ShardOpt = None,
            skip_existing: SkipOpt = False, raw_domain: RawDomainOpt = None, raw_weights: RawWeightsOpt = None) -> None:
    """Denoise images: [cyan]denoise-cli denoise photos/*.png[/], or [cyan]cat a.png | denoise-cli denoise - > b.png[/].

    Outputs keep bit depth (16-bit stays 16-bit), alpha, EXIF and ICC profile. Inputs are never overwritten and outputs are written atomically.

    Many machines: run it under torchrun (each process its own share of the inputs and its own GPU, one summary), or with --shard K/N per job; --skip-existing makes a rerun continue where an interrupted one stopped.

    Exit code: 0 all done, 1 some inputs failed, 2 usage error, 130 interrupted.
    """
    from ..api import BatchOptions, denoise_batch

    options = BatchOptions(output=output, suffix=suffix, fmt=fmt, weights=weights, device=device, precision=precision,
                           tile=tile, overlap=overlap, ensemble=ensemble, strength=strength, recursive=recursive,
                           overwrite=overwrite, max_megapixels=max_pixels, shard=shard, skip_existing=skip_existing,
                           raw_domain=raw_domain, raw_weights=raw_weights)
    if as_json and output != "-" and sys.stdout is None:
        raise ConfigError("--json writes to standard output, which is closed: redirect it to a file")

    def on_result(res) -> None:
        name = "stdin" if res.source == "-" else res.source
        if not res.ok and not res.skipped:
            error_line(f"{name}: {explain(res.exception or res.error)}")
        elif not quiet and not res.skipped:
            for n in res.notices + ([f"denoised with {res.weights}"] if res.weights else []):
                note_line(f"{name}: {n}")

    with RichReporter(quiet=quiet or output == "-") as reporter:
        summary = denoise_batch(inputs, options, reporter=reporter, on_result=on_result)
    if summary.other_rank:  # under torchrun: rank 0 reports for everyone
        raise typer.Exit(EXIT_FAILED if summary.failed else EXIT_OK)
    if summary.nothing_to_do:
        say(f"nothing to do: {summary.skipped} output(s) exist already" if summary.skipped else "nothing to do in this share")
    elif as_json:
        report = {"done": summary.done, "failed": summary.failed, "skipped": summary.skipped_all, "device": summary.device,
                  **summary.weights, "ensemble": ensemble, "strength": strength, "results": summary.results}
        write_summary(json.dumps(report, indent=2) + "\n", sys.stderr if summary.to_stdout else sys.stdout)
    elif not quiet and not summary.to_stdout:
        say(_summary_line(summary, output, suffix))
    raise typer.Exit(EXIT_FAILED if summary.failed else EXIT_OK)


def _summary_line(summary, output: str | None, suffix: str | None) -> str:
    """The closing line: counts, where the outputs went, which model made them, and the speed."""
    from ..inference.batch import summary_line

    model = "camera profiles where they match, else the default" if summary.per_photo else \
        f"model {summary.weights.get('weights')}"
    if summary.weights.get("weights_raw"):
        model += f" (RAW files: {summary.weights['weights_raw']}, before demosaicking)"
    where = f"into {output}" if output else f"beside the inputs (NAME{suffix if suffix is not None else '_denoised'}.EXT)"
    return summary_line(summary.done, summary.failed, summary.megapixels, summary.seconds, summary.device,
                        skipped=summary.skipped_all, where=where, model=model)
