"""Denoise files: gather inputs, name outputs safely, and process each file independently so
one bad file never stops the batch."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .inference import Denoiser
from .io import IMAGE_SUFFIXES, RAW_SUFFIXES, ImageError, output_format, read_image, write_image, encode_image, DEFAULT_MAX_PIXELS

STDIO = "-"


@dataclass
class Job:
    """One input and where its output goes (STDIO for stdin/stdout)."""

    source: str
    target: str | None = None
    error: str | None = None  # set when the job is refused before it runs


@dataclass
class Result:
    source: str
    target: str | None
    ok: bool
    error: str | None = None
    seconds: float = 0.0
    megapixels: float = 0.0
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def gather(paths: list[str], *, recursive: bool = False, skip_suffix: str = "") -> list[tuple[str, Path | None]]:
    """Expand paths into (input, folder it came from). Named files are kept whatever their
    suffix (so a wrong one gets a clear error); folders contribute image files only."""
    out: list[tuple[str, Path | None]] = []
    for p in paths:
        if p == STDIO:
            out.append((STDIO, None))
            continue
        path = Path(p)
        if path.is_dir():
            found = path.rglob("*") if recursive else path.iterdir()
            for f in sorted(found):
                if (f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                        and not (skip_suffix and f.stem.endswith(skip_suffix))):
                    out.append((str(f), path))
        else:
            out.append((p, None))
    return out


def plan(inputs: list[tuple[str, Path | None]], *, output: str | None, suffix: str | None,
         fmt: str | None) -> list[Job]:
    """Decide each output path; refuse any that would overwrite an input or collide."""
    if suffix is None:
        suffix = "" if output and output != STDIO else "_denoised"
    jobs: list[Job] = []
    sources = {str(Path(s).resolve()) for s, _ in inputs if s != STDIO}
    taken: set[str] = set()
    for src, root in inputs:
        if src == STDIO or output == STDIO:
            jobs.append(Job(src, STDIO))
            continue
        s = Path(src)
        ext = f".{fmt}" if fmt else (".tif" if s.suffix.lower() in RAW_SUFFIXES else s.suffix)
        name = f"{s.stem}{suffix}{ext}"
        if output:
            rel = s.parent.relative_to(root) if root else Path()
            target = Path(output) / rel / name
        else:
            target = s.with_name(name)
        key = str(target.resolve())
        if key in sources:
            jobs.append(Job(src, str(target), "output would overwrite an input (use -o DIR or --suffix)"))
        elif key in taken:
            jobs.append(Job(src, str(target), f"output {target} is also the output of another input"))
        else:
            taken.add(key)
            jobs.append(Job(src, str(target)))
    return jobs


def run_job(denoiser: Denoiser, job: Job, *, overwrite: bool = False, stdout_format: str = "png",
            max_pixels: int = DEFAULT_MAX_PIXELS) -> Result:
    """Read, denoise and write one job; failures become a Result with a one-line error."""
    start = time.perf_counter()
    res = Result(job.source, job.target, ok=False)
    if job.error:
        res.error = job.error
        return res
    try:
        if job.target != STDIO:
            output_format(job.target)  # fail fast on an unwritable suffix
            if Path(job.target).exists() and not overwrite:
                raise ImageError(f"output {job.target} exists (use --overwrite to replace it)")
        photo = read_image(sys.stdin.buffer.read() if job.source == STDIO else job.source, max_pixels=max_pixels)
        res.notices = photo.notices
        photo.pixels = denoiser(photo.pixels, photo.notices)
        if job.target == STDIO:
            data = encode_image(photo, output_format(f"x.{stdout_format}"))
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            write_image(photo, job.target, overwrite=overwrite)
        res.ok = True
        res.megapixels = photo.pixels.shape[0] * photo.pixels.shape[1] / 1e6
    except ImageError as e:
        res.error = str(e)
    except MemoryError:
        res.error = "out of memory (try a smaller --tile)"
    except RuntimeError as e:  # e.g. a GPU out of memory
        res.error = f"failed while denoising: {str(e).splitlines()[0]}"
    res.seconds = time.perf_counter() - start
    return res
