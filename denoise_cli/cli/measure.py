"""`synth` and `eval`: make seeded noisy test images, and score a checkpoint or a classical method on them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from ..errors import ConfigError
from ._common import EXIT_FAILED, EXIT_OK, DeviceOpt, EnsembleOpt, NoiseOpt, WeightsOpt, error_line, say, err, flag, reports_errors


@reports_errors()
def synth(
    inputs: Annotated[list[str], typer.Argument(metavar="CLEAN", show_default=False,
                                                help="Clean images or folders.")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="DIR", help="Folder for the noisy copies.")],
    noise: NoiseOpt = "awgn:25",
    seed: Annotated[int, typer.Option(help="Same seed, same noise (bit-identical).")] = 0,
    overwrite: Annotated[bool, flag("--overwrite", help="Replace existing outputs.")] = False,
) -> None:
    """Write noisy copies of clean images (clipped and rounded to their bit depth, as PNG)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..inference.batch import STDIO, gather
    from ..evaluation.scoring import synth_folder
    from ..noise.synthetic import parse_spec

    spec = parse_spec(noise)
    sources = [Path(s) for s, _ in gather(inputs) if s != STDIO]
    if not sources:
        raise ConfigError("no images found in " + ", ".join(inputs))
    with Progress(TextColumn("[bold]synth"), BarColumn(), MofNCompleteColumn(), console=err, transient=True) as bar:
        task = bar.add_task("synth", total=len(sources))

        def on_file(src: Path, error: str | None) -> None:
            if error:
                error_line(f"{src}: {error}")
            bar.advance(task)

        failed = synth_folder(sources, output, spec, seed, overwrite=overwrite, on_file=on_file)
    say(f"{len(sources) - failed} noisy images ({spec}, seed {seed}) in {output}")
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


@reports_errors()
def eval_cmd(
    data: Annotated[Optional[Path], typer.Option(metavar="DIR",
                                                 help="Folder of clean images; noise is added with --seed.")] = None,
    noise: NoiseOpt = "awgn:25",
    weights: WeightsOpt = None,
    method: Annotated[Optional[Literal["bm3d", "nlm", "identity"]], typer.Option(
        help="A classical anchor instead of weights.")] = None,
    noisy: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Folder of real noisy images (with "
                                                                      "--clean).")] = None,
    clean: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Folder of their clean references (with "
                                                                      "--noisy).")] = None,
    seed: Annotated[int, typer.Option(help="Noise seed; fixed so every method sees the same images.")] = 0,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N images.")] = None,
    device: DeviceOpt = "auto",
    ensemble: EnsembleOpt = False,
    out: Annotated[Path, typer.Option(metavar="DIR", help="Folder for the JSON and CSV reports.")] = Path("eval-results"),
    quiet: Annotated[bool, flag("--quiet", "-q", help="Print only the mean row.")] = False,
) -> None:
    """Measure PSNR/SSIM of a checkpoint or a classical method on a test set.

    Protocol: noisy inputs are clipped and rounded to 8 bits as a saved image would be; the network runs in fp32; outputs are rounded to 8 bits; PSNR and SSIM (Gaussian window σ=1.5) are on the 0–255 scale over all channels with no border crop. BM3D gets the true σ for AWGN and a MAD estimate otherwise.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from ..evaluation.scoring import (classical, evaluate, given_pairs, method_label, report_stem, summarize, synthetic_pairs,
                            write_report)
    from ..io import list_images
    from ..noise.synthetic import parse_spec

    if (data is None) == (noisy is None) or (noisy is None) != (clean is None):
        raise ConfigError("give --data DIR (synthetic noise), or --noisy DIR --clean DIR (given pairs)")
    if method and weights:
        raise ConfigError("give --weights or --method, not both")
    if method and ensemble:
        raise ConfigError("--ensemble applies to --weights, not to a classical --method")
    spec = parse_spec(noise) if data is not None else None
    if method:
        fn, label = classical(method, spec), method
    else:
        from ..api import load_denoiser

        fn, label = load_denoiser(weights, device=device, precision="fp32", ensemble=ensemble), method_label(weights or "default", ensemble)
    folder = data or noisy
    pairs = synthetic_pairs(data, spec, seed, limit) if data is not None else given_pairs(noisy, clean, limit)
    table = Table(title=f"{label} on {folder.name} · {spec or 'given pairs'} · seed {seed}")
    for col in ("image", "PSNR", "SSIM", "noisy PSNR", "s", "MP/s"):
        table.add_column(col, justify="left" if col == "image" else "right")
    with Progress(TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[n]}"),
                  console=err, transient=True) as bar:
        task = bar.add_task("eval", total=limit or len(list_images(folder)), n="")

        def on_row(r) -> None:
            bar.update(task, advance=1, n=f"{r.name} {r.psnr:.2f} dB")
            table.add_row(r.name, f"{r.psnr:.2f}", f"{r.ssim:.4f}", f"{r.noisy_psnr:.2f}", f"{r.seconds:.2f}",
                          f"{r.megapixels / r.seconds:.2f}" if r.seconds else "—")
        rows = evaluate(pairs, fn, on_row)
    m = summarize(rows)
    table.add_section()
    table.add_row("[bold]mean", f"[bold]{m['psnr']:.2f}", f"[bold]{m['ssim']:.4f}", f"{m['noisy_psnr']:.2f}",
                  f"{m['seconds']:.1f}", f"{m['mp_per_s']:.2f}")
    stem = report_stem(folder.name, spec, label)  # reports first: a closed pipe on stdout cannot lose them
    js, cs = write_report(rows, {"method": label, "data": str(folder), "noise": str(spec or "given pairs"),
                                 "seed": seed, "ensemble": ensemble}, out / stem)
    if quiet:
        print(f"{label}\t{folder.name}\t{spec or 'pairs'}\tPSNR {m['psnr']:.2f}\tSSIM {m['ssim']:.4f}")
    else:
        Console().print(table)
    say(f"wrote {js} and {cs}")
