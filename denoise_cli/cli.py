"""The `denoise-cli` command: parses arguments, calls the library, prints. Nothing else lives here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

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
EnsembleOpt = Annotated[bool, typer.Option(
    "--ensemble", help="Average 8 passes over rotated/mirrored copies of each image: +0.1–0.6 dB on the test "
                "sets, about 6× slower.")]
TrainPrecisionOpt = Annotated[str, typer.Option(
    help="MWCNN training precision: fp32, or bf16 (autocast, for GPUs with bf16 tensor cores; on CPUs without "
         "bf16 units it is slower).")]


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
    tile: Annotated[Optional[int], typer.Option(help="Tile side in pixels; 0 never tiles \\[default: auto: "
                    "1024 for images over 1 MP on the CPU; on a CUDA GPU whole images while they fit in half its free "
                    "memory].")] = None,
    overlap: Annotated[int, typer.Option(help="Context pixels around each tile.")] = 96,
    ensemble: EnsembleOpt = False,
    strength: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="How much of the estimated noise to remove, 0–1: the output is y − S·(y − x̂) for the "
                               "photo y and the network's estimate x̂, so 0.7 keeps 30 % of the grain.")] = 1.0,
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
    from .batch import STDIO, StdoutClosed, gather, plan, run_job
    from .errors import DenoiseError
    from .weights import used_weights

    if fmt and fmt.lower().lstrip(".") not in ("png", "tif", "tiff", "jpg", "jpeg"):
        raise fail(f"--format {fmt}: use png, tif or jpg")
    fmt = fmt.lower().lstrip(".") if fmt else None
    if output not in (None, STDIO) and Path(output).exists() and not Path(output).is_dir():
        raise fail(f"-o {output} is a file: -o takes a folder (or - for stdout)")
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
        denoiser = load_denoiser(weights, device=device, precision=precision, tile=tile, overlap=overlap,
                                 ensemble=ensemble, strength=strength)
    except DenoiseError as e:
        raise fail(str(e))

    results = []
    show = not quiet and not to_stdout
    with Progress(TextColumn("[bold]denoise"), BarColumn(), TextColumn("{task.fields[files]}"),
                  TextColumn("{task.fields[name]}"), TimeRemainingColumn(), console=err, disable=not show,
                  transient=True) as bar:
        task = bar.add_task("denoise", total=len(jobs), name="", files=f"0/{len(jobs)}")
        for i, job in enumerate(jobs):
            bar.update(task, name=Path(job.source).name)

            def on_tile(done: int, total: int, i: int = i) -> None:  # progress inside a large photo
                bar.update(task, completed=i + done / total)

            try:
                res = run_job(denoiser, job, overwrite=overwrite, stdout_format=fmt or "png",
                              max_pixels=int(max_pixels * 1e6), on_tile=on_tile)
            except KeyboardInterrupt:
                err.print("interrupted: finished outputs are kept; no partial file was written")
                raise typer.Exit(130)
            except StdoutClosed as e:
                raise fail(str(e), EXIT_SOME_FAILED)
            results.append(res)
            name = "stdin" if job.source == STDIO else job.source
            if res.ok:
                if not quiet:
                    for n in res.notices:
                        err.print(f"[yellow]note:[/] {name}: {n}", highlight=False, soft_wrap=True)
            else:
                err.print(f"[bold red]error:[/] {name}: {res.error}", highlight=False, soft_wrap=True)
            bar.update(task, completed=i + 1, files=f"{i + 1}/{len(jobs)}")

    done = sum(r.ok for r in results)
    failed = len(results) - done
    if as_json:
        summary = {"done": done, "failed": failed, "device": str(denoiser.device), **used_weights(weights),
                   "ensemble": ensemble, "strength": strength,
                   "results": [r.to_dict() for r in results]}
        (err.file if to_stdout else sys.stdout).write(json.dumps(summary, indent=2) + "\n")
    elif not quiet and not to_stdout:
        err.print(summary_line(done, failed, sum(r.megapixels for r in results if r.ok),
                               sum(r.denoise_seconds for r in results if r.ok), str(denoiser.device)))
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def summary_line(done: int, failed: int, megapixels: float, seconds: float, device: str) -> str:
    """The closing line of `denoise`: counts, and the network's throughput (denoising time only, not loading,
    decoding or writing) to three significant figures so that a slow device reads e.g. 0.0123 MP/s, not 0.00."""
    line = f"{done} denoised, {failed} failed"
    if done and seconds > 0:
        line += f" · {megapixels / seconds:.3g} MP/s on {device}"
    return line


@weights_app.command("list")
def weights_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Show registered weights: name, noise, where the file is (embedded or the Hub), measured PSNR.
    `--json` adds sizes and the whole record."""
    from .weights import cached_path, load_registry

    reg = load_registry()
    rows, scores = [], []  # scores: each entry's (test, PSNR) pairs, spelled one way for JSON, another for the table
    for e in reg.entries.values():
        local = cached_path(e)
        scores.append([(k, v["psnr"]) for k, v in e.metrics.items() if "psnr" in v])
        rows.append({"name": e.name, "default": e.name == reg.default, "default_gray": e.name == reg.default_gray,
                     "channels": e.channels, "noise": e.noise,
                     "size_mb": round(e.size / 1e6, 2), "source": "embedded" if e.embedded else f"hf://{e.repo_id}",
                     "local": bool(local and local.exists()),
                     "psnr": "; ".join(f"{k} {p:.2f} dB" for k, p in scores[-1])})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="denoise-cli weights")
    table.add_column("name", no_wrap=True)  # what a user types: never cut short
    table.add_column("images, noise")
    table.add_column("where", no_wrap=True)
    table.add_column("measured PSNR (dB)", no_wrap=True)
    for r, measured in zip(rows, scores):
        role = "\n(default)" if r["default"] else "\n(gray default)" if r["default_gray"] else ""
        where = "embedded" if r["source"] == "embedded" else f"Hub, {r['size_mb']} MB" + (", cached" if r["local"] else "")
        table.add_row(r["name"] + role, f"{'color' if r['channels'] == 3 else 'gray'}, {r['noise']}", where,
                      "\n".join(f"{k} {p:.2f}" for k, p in measured) or "—")
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


TimeBudgetOpt = Annotated[Optional[str], typer.Option(help="Training time, e.g. 30m or 1h30m.")]
IterationsOpt = Annotated[Optional[int], typer.Option(help="Training steps (with or instead of --time-budget).")]


def _budget(time_budget: str | None, iterations: int | None):
    """The training Budget for --time-budget/--iterations, or a usage error."""
    from .runs import Budget, parse_duration

    if time_budget is None and iterations is None:
        raise fail("give --time-budget (e.g. 30m) and/or --iterations")
    try:
        return Budget(iterations, parse_duration(time_budget) if time_budget else None)
    except ValueError as e:
        raise fail(str(e))


NoiseOpt = Annotated[str, typer.Option("--noise", "-n", help="awgn:SIGMA (0–255), awgn:LO-HI, hg:ALPHA,DELTA, "
                                       "mg:SCALE or camera:ISO.")]


@app.command()
def synth(
    inputs: Annotated[list[str], typer.Argument(help="Clean images or folders.", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Folder for the noisy copies.")],
    noise: NoiseOpt = "awgn:25",
    seed: Annotated[int, typer.Option(help="Same seed, same noise (bit-identical).")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Write noisy copies of clean images (clipped and rounded to their bit depth, as PNG)."""
    from .batch import gather
    from .evaluate import synth_file
    from .io import ImageError
    from .noise import NoiseSpecError, parse_spec

    try:
        spec = parse_spec(noise)
    except NoiseSpecError as e:
        raise fail(str(e))
    items = [(s, r) for s, r in gather(inputs) if s != "-"]
    if not items:
        raise fail("no images found in " + ", ".join(inputs))
    failed = 0
    with Progress(TextColumn("[bold]synth"), BarColumn(), MofNCompleteColumn(), console=err, transient=True) as bar:
        for src, _ in bar.track(items):
            s = Path(src)
            dst = Path(output) / f"{s.stem}.png"
            if dst.resolve() == s.resolve():
                err.print(f"[bold red]error:[/] {src}: output would overwrite the input", highlight=False)
                failed += 1
                continue
            try:
                synth_file(s, dst, spec, seed, overwrite=overwrite)
            except ImageError as e:
                err.print(f"[bold red]error:[/] {src}: {e}", highlight=False, soft_wrap=True)
                failed += 1
    err.print(f"{len(items) - failed} noisy images ({spec}, seed {seed}) in {output}", highlight=False)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


@app.command("eval")
def eval_cmd(
    data: Annotated[Optional[Path], typer.Option(help="Folder of clean images; noise is added with --seed.")] = None,
    noise: NoiseOpt = "awgn:25",
    weights: WeightsOpt = None,
    method: Annotated[Optional[str], typer.Option(help="Classical anchor instead of weights: bm3d, nlm or identity.")] = None,
    noisy: Annotated[Optional[Path], typer.Option(help="Folder of real noisy images (with --clean).")] = None,
    clean: Annotated[Optional[Path], typer.Option(help="Folder of their clean references (with --noisy).")] = None,
    seed: Annotated[int, typer.Option(help="Noise seed; fixed so every method sees the same images.")] = 0,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N images.")] = None,
    device: DeviceOpt = "auto",
    ensemble: EnsembleOpt = False,
    out: Annotated[Path, typer.Option(help="Folder for the JSON and CSV reports.")] = Path("eval-results"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the mean row.")] = False,
) -> None:
    """Measure PSNR/SSIM of a checkpoint or a classical method on a test set.

    Protocol: noisy inputs are clipped and rounded to 8 bits as a saved image would be; outputs are rounded to 8 bits; PSNR and SSIM (Gaussian window σ=1.5) are on the 0–255 scale over all channels with no border crop. BM3D gets the true σ for AWGN and a MAD estimate otherwise.
    """
    from .evaluate import (classical, evaluate, given_pairs, method_label, summarize, synthetic_pairs, report_stem,
                           write_report)
    from .io import ImageError, list_images
    from .noise import NoiseSpecError, parse_spec

    if (data is None) == (noisy is None) or (noisy is None) != (clean is None):
        raise fail("give --data DIR (synthetic noise), or --noisy DIR --clean DIR (given pairs)")
    if method and weights:
        raise fail("give --weights or --method, not both")
    if method and ensemble:
        raise fail("--ensemble applies to --weights, not to a classical --method")
    try:
        spec = parse_spec(noise) if data is not None else None
        if method:
            fn, label = classical(method, spec), method
        else:
            from .api import load_denoiser

            den = load_denoiser(weights, device=device, ensemble=ensemble)
            fn, label = den, method_label(weights or "default", ensemble)
        pairs = synthetic_pairs(data, spec, seed, limit) if data is not None else given_pairs(noisy, clean, limit)
        table = Table(title=f"{label} on {(data or noisy).name} · {spec or 'given pairs'} · seed {seed}")
        for col in ("image", "PSNR", "SSIM", "noisy PSNR", "s", "MP/s"):
            table.add_column(col, justify="left" if col == "image" else "right")
        with Progress(TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[n]}"),
                      console=err, transient=True) as bar:
            task = bar.add_task("eval", total=limit or len(list_images(data or noisy)), n="")

            def on_row(r) -> None:
                bar.update(task, advance=1, n=f"{r.name} {r.psnr:.2f} dB")
                table.add_row(r.name, f"{r.psnr:.2f}", f"{r.ssim:.4f}", f"{r.noisy_psnr:.2f}", f"{r.seconds:.2f}",
                              f"{r.megapixels / r.seconds:.2f}" if r.seconds else "—")
            rows = evaluate(pairs, fn, on_row)
    except (ImageError, NoiseSpecError, ValueError) as e:
        raise fail(str(e))
    except Exception as e:  # weights/device errors carry one-line messages too
        raise fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    m = summarize(rows)
    table.add_section()
    table.add_row("[bold]mean", f"[bold]{m['psnr']:.2f}", f"[bold]{m['ssim']:.4f}", f"{m['noisy_psnr']:.2f}",
                  f"{m['seconds']:.1f}", f"{m['mp_per_s']:.2f}")
    safe = report_stem((data or noisy).name, spec, label)  # reports first: a closed pipe on stdout cannot lose them
    js, cs = write_report(rows, {"method": label, "data": str(data or noisy), "noise": str(spec or "given pairs"),
                                 "seed": seed, "ensemble": ensemble}, out / safe)
    if quiet:
        print(f"{label}\t{(data or noisy).name}\t{spec or 'pairs'}\tPSNR {m['psnr']:.2f}\tSSIM {m['ssim']:.4f}")
    else:
        Console().print(table)
    err.print(f"wrote {js} and {cs}", highlight=False)


@app.command()
def fit(
    noisy_dir: Annotated[Path, typer.Argument(help="Folder of your noisy photos (any format denoise reads).",
                                              show_default=False)],
    run: Annotated[Path, typer.Option(help="Run folder: config, checkpoints, metrics, denoised images, noise model.")],
    mode: Annotated[Literal["auto", "real", "synthetic"], typer.Option(
        help="auto (real for colour photos, synthetic for gray), real or synthetic.")] = "auto",
    arch: Annotated[Literal["small", "paper"], typer.Option(help="D-BSN size: small (CPU) or paper.")] = "small",
    time_budget: TimeBudgetOpt = None,
    iterations: IterationsOpt = None,
    resume: Annotated[bool, typer.Option(
        help="Continue an existing run up to the given budget; a larger budget than before is a warm restart "
             "(lr ramped back up).")] = False,
    patch: Annotated[int, typer.Option(help="Training patch side (sub-image side in real mode).")] = 48,
    batch: Annotated[int, typer.Option(help="Patches per step (sub-images per step in real mode).")] = 8,
    lr: Annotated[float, typer.Option(help="Adam learning rate (cosine decay; ×0.1 in the joint phase).")] = 1e-3,
    gamma: Annotated[float, typer.Option(help="Scale of the noise covariance in Bayes fusion.")] = 1.0,
    guide: Annotated[Literal["noisy", "self"], typer.Option(
        help="Guided-filter guide in real mode: noisy (the input) or self (the result).")] = "noisy",
    ring_skip: Annotated[bool, typer.Option(help="D-BSN mean = neighbour mean + learned residual (trains faster); "
                                                 "--no-ring-skip is the paper's plain mean.")] = True,
    noise_cov: Annotated[Literal["auto", "full", "diagonal"], typer.Option(
        help="Noise covariance: full (cross-channel terms, as camera noise has), diagonal (channels independent, "
             "e.g. AWGN/HG), or auto: diagonal, full with --likelihood constrained in real mode.")] = "auto",
    noise_lr: Annotated[float, typer.Option(
        help="The noise model's learning rate as a multiple of --lr.")] = 1.0,
    likelihood: Annotated[Literal["auto", "constrained", "exact"], typer.Option(
        help="Training likelihood: constrained (the paper's eq. 8), exact (log|Σμ+Σn|, which does not push D-BSN's "
             "error into the noise model; Σμ scaled per Bayer group in real mode), or auto: exact in real mode, "
             "constrained in synthetic mode.")] = "auto",
    sigma_mu_start: Annotated[Literal["auto", "small", "large"], typer.Option(
        help="D-BSN's uncertainty Σμ when the likelihood starts: small (the authors' start, no cross-channel terms), "
             "large (≈33/255, fit's start before 2026-12-01), or auto: small in real mode, large in synthetic "
             "mode.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed for patches and initialisation.")] = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Stage 1: learn a denoiser and the camera's noise from noisy photos alone (no clean images).

    Writes RUN/denoised/ (stage-1 results), RUN/noise_model.safetensors and RUN/noise_report.{json,png} (learned noise σ versus intensity, on your images and on flat gray). Ctrl-C saves a checkpoint; --resume continues.
    """
    from .inference import DeviceError, pick_device
    from .io import ImageError
    from .runs import Run
    from .noise_report import mid_gray
    from .stages.fit import FitConfig, auto_mode, fit as run_fit, load_noisy, saved_config

    budget = _budget(time_budget, iterations)
    if not noise_lr > 0:
        raise fail("--noise-lr must be a positive multiple of --lr")
    r = Run(run)
    if r.exists() and not resume:
        raise fail(f"run {run} exists: add --resume to continue it, or choose another --run")
    try:
        dev = pick_device(device)
        if r.exists():
            cfg = saved_config(r)  # resume: the run's own settings win
        else:
            _, photos = load_noisy(noisy_dir)
            auto, channels = auto_mode(photos)
            mode = auto if mode == "auto" else mode
            cfg = FitConfig(mode=mode, channels=channels, arch=arch, patch=patch, batch=batch, lr=lr, seed=seed,
                            gamma=gamma, guide=guide, ring_skip=ring_skip,
                            noise_cov=None if noise_cov == "auto" else noise_cov, noise_lr=noise_lr,
                            likelihood=None if likelihood == "auto" else likelihood,
                            sigma_mu_start=None if sigma_mu_start == "auto" else sigma_mu_start)
        err.print(f"fit: {cfg.mode} mode, {cfg.channels} channel(s), D-BSN {cfg.arch}, {cfg.noise_cov} noise "
                  f"covariance (lr ×{cfg.noise_lr:g}), {cfg.likelihood} likelihood, Σμ starting {cfg.sigma_mu_start}, "
                  f"on {dev}", highlight=False)
        with Progress(TextColumn("[bold]stage-1 images"), BarColumn(), MofNCompleteColumn(), console=err,
                      transient=True) as bar:
            task = bar.add_task("x", total=None)
            report = run_fit(noisy_dir, r, cfg, budget, dev,
                             on_image=lambda _: bar.advance(task))
    except KeyboardInterrupt:
        err.print(f"interrupted: checkpoint saved in {run}; continue with --resume")
        raise typer.Exit(130)
    except (ImageError, DeviceError, ValueError) as e:
        raise fail(str(e))
    err.print(f"done: stage-1 images in {run / 'denoised'}; learned σ at mid-gray on your photos "
              f"{mid_gray(report)}; "
              f"noise report {run / 'noise_report.png'}", highlight=False, soft_wrap=True)


@app.command()
def distill(
    clean_dir: Annotated[list[Path], typer.Argument(
        help="Folder(s) of clean images unrelated to your photos; several are drawn from equally often, gray images "
             "are replicated to colour.", show_default=False)],
    fit_run: Annotated[Path, typer.Option("--fit", help="A finished `fit` run folder.")],
    out: Annotated[Optional[Path], typer.Option(help="Output run folder \\[default: FIT/model].")] = None,
    arch: Annotated[Literal["small", "full"], typer.Option(
        help="MWCNN size: small (fast, embeddable) or full.")] = "small",
    time_budget: TimeBudgetOpt = None,
    iterations: IterationsOpt = None,
    resume: Annotated[bool, typer.Option(
        help="Continue an existing distill run up to the given budget, with the run's own training settings; a larger "
             "budget than before is a warm restart (lr ramped back up).")] = False,
    patch: Annotated[int, typer.Option(help="Training patch side.")] = 64,
    batch: Annotated[int, typer.Option(help="Patches per step (1/8 of them from your noisy photos).")] = 16,
    lr: Annotated[Optional[float], typer.Option(
        help="Adam learning rate (cosine decay) \\[default: 1e-3 for --arch small, 2.5e-4 for full].",
        show_default=False)] = None,
    noise_scale: Annotated[str, typer.Option(
        help="Scale the learned noise by d ~ U(LO, HI) per patch; 0:2 from a σ=25 fit gives a blind model "
             "for σ up to 50.")] = "0.9:1.1",
    stage1_weight: Annotated[float, typer.Option(
        help="Weight λ of the (noisy photo, stage-1 result) pairs in the loss (paper: 0.1; 0 = synthetic pairs only).",
    )] = 0.1,
    noise_passes: Annotated[int, typer.Option(
        min=1, help="Read the noise model N times, each at the previous pass's noisy draw: 1 reads it at the clean "
                    "image (the paper); 2 at a noisy one, like the photos it learned from (a long colour fit can "
                    "read 8–12 % low at clean images).")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    init: Annotated[Optional[str], typer.Option(
        help="Start from these weights (a registry name such as gray-awgn-small, a file or a distill folder) "
             "instead of random ones: fine-tunes a trained model to this fit's noise.", show_default=False)] = None,
    device: DeviceOpt = "auto",
    precision: TrainPrecisionOpt = "fp32",
) -> None:
    """Stage 2: train a fast MWCNN from the learned noise model and clean images.

    Writes OUT/model.safetensors (use it with `denoise --weights OUT`) and OUT/entry.toml, a weights.toml entry with its sha256 and provenance. Ctrl-C saves a checkpoint; --resume continues.
    """
    from .inference import DeviceError, pick_device
    from .io import ImageError
    from .runs import Run
    from .checkpoint import CheckpointError
    from .stages.distill import DistillConfig, distill as run_distill, parse_noise_scale, saved_distill_config
    from .weights import WeightsError

    budget = _budget(time_budget, iterations)
    if not (fit_run / "noise_model.safetensors").exists():
        raise fail(f"{fit_run} is not a finished fit run (no noise_model.safetensors)")
    try:
        scale = parse_noise_scale(noise_scale)
    except ValueError as e:
        raise fail(str(e))
    if stage1_weight < 0:
        raise fail(f"--stage1-weight {stage1_weight:g}: expected a weight ≥ 0")
    out_run = Run(out or fit_run / "model")
    if out_run.exists() and not resume:
        raise fail(f"{out_run.path} exists: add --resume to continue it, or choose another --out")
    try:
        if out_run.exists():  # resuming: the run's own settings win, as for fit
            cfg = saved_distill_config(out_run, fit_run=fit_run, clean_dir=clean_dir)
            err.print(f"resuming {out_run.path} with its saved settings (arch {cfg.arch}, patch {cfg.patch}, batch "
                      f"{cfg.batch}, lr {cfg.lr:g}, noise scale {cfg.noise_scale[0]:g}:{cfg.noise_scale[1]:g}, "
                      f"stage-1 weight {cfg.lam:g})", highlight=False)
        else:
            cfg = DistillConfig(fit_run=str(fit_run), clean_dir=clean_dir, arch=arch, patch=patch,
                                batch=batch, lr=lr, noise_scale=scale, lam=stage1_weight, seed=seed, init=init,
                                noise_passes=noise_passes)
        path = run_distill(cfg, out_run, budget, pick_device(device), precision=precision)
    except KeyboardInterrupt:
        err.print(f"interrupted: checkpoint saved in {out_run.path}; continue with --resume")
        raise typer.Exit(130)
    except (ImageError, DeviceError, ValueError, WeightsError, CheckpointError) as e:
        raise fail(str(e))
    err.print(f"done: {path}; try `denoise-cli denoise PHOTO --weights {out_run.path}`", highlight=False)


@weights_app.command("export")
def weights_export(
    model: Annotated[Path, typer.Argument(help="A distill output folder (holding model.safetensors).", show_default=False)],
    dest: Annotated[Path, typer.Argument(help="Folder to write: weights, config.json, README.md and entry.toml (a "
                                         "weights.toml entry with the written file's sha256).", show_default=False)],
    upload: Annotated[Optional[str], typer.Option(help="Also upload to this Hub repo (owner/name); needs a token. "
                                                  "DEST/entry.toml is then pinned to the commit.")] = None,
    half: Annotated[bool, typer.Option(help="Store the weights as fp16 (half the file size).")] = False,
) -> None:
    """Write a folder ready for the Hugging Face Hub (model card with provenance and measurements)."""
    from .export import export_model, pin_revision, upload_folder
    from .weights import WeightsError

    try:
        out = export_model(model, dest, half=half, repo_id=upload)
    except (WeightsError, ValueError, OSError) as e:  # no model, a malformed entry.toml, an unwritable DEST
        raise fail(str(e))
    err.print(f"exported to {out}", highlight=False)
    if upload:
        try:
            revision = upload_folder(out, upload)
        except Exception as e:  # huggingface_hub errors: authentication, network
            raise fail(f"upload failed: {str(e).splitlines()[0]}", EXIT_SOME_FAILED)
        err.print(f"uploaded {upload} at {revision}; the weights.toml entry pinned to it: {pin_revision(out, revision)}",
                  highlight=False)


@app.command()
def adapt(
    noisy_dir: Annotated[Path, typer.Argument(help="Your noisy photos.", show_default=False)],
    clean_dir: Annotated[Path, typer.Argument(help="Unrelated clean images.", show_default=False)],
    run: Annotated[Path, typer.Option(help="Run folder (fit in RUN, the model in RUN/model).")],
    time_budget: Annotated[str, typer.Option(help="Total training time, split 60/40 between fit and distill.")] = "1h",
    device: DeviceOpt = "auto",
    precision: TrainPrecisionOpt = "fp32",
) -> None:
    """Adapt to a new camera in one command: `fit` on your noisy photos, then `distill`.

    Then denoise with `denoise-cli denoise PHOTOS --weights RUN/model`.
    """
    from .runs import parse_duration

    try:
        total = parse_duration(time_budget)
    except ValueError as e:
        raise fail(str(e))
    # every other setting is the commands' own default (Annotated options keep real Python defaults)
    fit(noisy_dir, run, time_budget=f"{total * 0.6:.0f}s", resume=(run / "checkpoint.safetensors").exists(),
        device=device)
    distill([clean_dir], run, time_budget=f"{total * 0.4:.0f}s",
            resume=(run / "model" / "checkpoint.safetensors").exists(), device=device, precision=precision)
