"""Denoise files: gather inputs, name outputs safely, and process each file independently so
one bad file never stops the batch."""

from __future__ import annotations

import functools
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from ..errors import ConfigError, DenoiseError, ImageError, OutputExistsError
from ..io import (DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, RAW_SUFFIXES, WRITE_FORMATS, Photo, encode_image, output_format,
                  read_image, write_image)

if TYPE_CHECKING:  # the module itself stays free of torch, so a batch can be planned before a model is loaded
    from .choice import ModelChoice
    from .denoiser import Denoiser

STDIO = "-"
STDIN_NAME = "stdin"  # the output name for an image read from stdin and written into -o DIR


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
    seconds: float = 0.0  # the whole job: read, denoise, write
    denoise_seconds: float = 0.0  # the network alone
    megapixels: float = 0.0
    notices: list[str] = field(default_factory=list)
    weights: str | None = None  # which model denoised it, when the batch chooses per photo (ModelChoice)
    skipped: bool = False  # with skip_existing: another process finished this output meanwhile
    exception: DenoiseError | None = field(default=None, repr=False)  # what failed, for a caller's own hints

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "exception"}


class StdoutClosed(DenoiseError):
    """The reader of standard output went away before the image was written (e.g. `| head -c 10`)."""


def real_path(path: str | os.PathLike) -> str:
    """The absolute path with symlinks resolved; a symlink loop stays as it is instead of raising."""
    return os.path.realpath(path)


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
            for f in sorted(_walk(path, recursive)):
                if f.suffix.lower() in IMAGE_SUFFIXES and not (skip_suffix and f.stem.endswith(skip_suffix)):
                    out.append((str(f), path))
        else:
            out.append((p, None))
    return out


def _walk(folder: Path, recursive: bool) -> list[Path]:
    """Files in a folder (and below it when ``recursive``), each visited folder once: a symlink that loops back
    to a folder already seen, or an unreadable folder, is passed over."""
    seen: set[str] = set()
    files: list[Path] = []
    stack = [folder]
    while stack:
        d = stack.pop()
        key = real_path(d)
        if key in seen:
            continue
        seen.add(key)
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir():
                    if recursive:
                        stack.append(Path(e.path))
                elif e.is_file():
                    files.append(Path(e.path))
            except OSError:  # a symlink loop or a vanished entry: not an image
                continue
    return files


def check_suffix(suffix: str) -> None:
    """ConfigError for a --suffix that would put outputs in another folder (a path separator) or is not a name."""
    if any(sep and sep in suffix for sep in ("/", os.sep, os.altsep)) or "\0" in suffix:
        raise ConfigError(f"--suffix {suffix!r}: a suffix is added to file names and cannot hold / or a NUL; "
                          "use -o DIR for another folder")


def names_a_file(output: str | None) -> bool:
    """Whether -o names one output file (an image suffix and not an existing folder) rather than a folder."""
    return (output not in (None, STDIO) and Path(output).suffix.lower() in WRITE_FORMATS
            and not output.endswith(("/", os.sep)) and not Path(output).is_dir())


def plan(inputs: list[tuple[str, Path | None]], *, output: str | None, suffix: str | None,
         fmt: str | None) -> list[Job]:
    """Decide each output path; refuse any that would overwrite an input or collide. ``output``: a folder, STDIO, or
    with a single input a file name with an image suffix (``-o clean.png``, as ``convert a.png b.png`` takes it)."""
    if suffix is not None:
        check_suffix(suffix)
    if names_a_file(output):
        if len(inputs) != 1:
            raise ConfigError(f"-o {output} names one file, but {len(inputs)} images were given: -o takes a folder "
                              "for several")
        if fmt and WRITE_FORMATS[Path(output).suffix.lower()] != WRITE_FORMATS[f".{fmt}"]:
            raise ConfigError(f"-o {output} and --format {fmt} disagree: leave one out")
        src = inputs[0][0]
        if src != STDIO and os.path.lexists(src) and real_path(output) == real_path(src):
            raise ConfigError(f"-o {output} is the input itself, and inputs are never overwritten: name another file")
        return [Job(src, output, None if src == STDIO or os.path.lexists(src) else "no such file")]
    if suffix is None:
        suffix = "" if output and output != STDIO else "_denoised"
    jobs: list[Job] = []
    sources = {real_path(s) for s, _ in inputs if s != STDIO}
    taken: set[str] = set()
    for src, root in inputs:
        if output == STDIO or (src == STDIO and not output):
            jobs.append(Job(src, STDIO))
            continue
        s = Path(STDIN_NAME if src == STDIO else src)
        name = f"{s.stem}{suffix}.{fmt}" if fmt else f"{s.stem}{suffix}{output_suffix(s, src == STDIO)}"
        if output:
            rel = s.parent.relative_to(root) if root else Path()
            target = Path(output) / rel / name
        else:
            target = s.with_name(name)
        key = real_path(target)
        if src != STDIO and not os.path.lexists(src):
            jobs.append(Job(src, str(target), "no such file"))
        elif key in sources:
            jobs.append(Job(src, str(target), "output would overwrite an input (use -o DIR or --suffix)"))
        elif key in taken:
            jobs.append(Job(src, str(target), f"output {target} is also the output of another input"))
        else:
            taken.add(key)
            jobs.append(Job(src, str(target)))
    return jobs


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → (K, N) with 1 ≤ K ≤ N: this process takes the K-th of N shares of the inputs."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise ConfigError(f"shard {text!r}: expected K/N with 1 ≤ K ≤ N, e.g. 2/8")
    return k, n


def shard(jobs: list[Job], k: int, n: int) -> list[Job]:
    """The K-th of N shares of a planned batch (every N-th job from the K-th on): the same plan in every process, so
    outputs do not depend on how the work is split, and folders sorted by size or date spread evenly."""
    return jobs[k - 1 :: n]


def skip_done(jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """(jobs still to do, jobs whose output already exists): an interrupted batch continues where it stopped; outputs
    are written whole or not at all, so one that exists is finished."""
    todo, done = [], []
    for j in jobs:
        (done if not j.error and j.target not in (None, STDIO) and os.path.lexists(j.target) else todo).append(j)
    return todo, done


def output_suffix(source: Path, stdin: bool = False) -> str:
    """The output's suffix when no --format is given: the input's own where it can be written, TIFF for camera RAW
    (16 bits), PNG otherwise (GIF, BMP, WebP, stdin)."""
    suffix = source.suffix.lower()
    if suffix in RAW_SUFFIXES:
        return ".tif"
    if stdin or suffix not in WRITE_FORMATS:
        return ".png"
    return source.suffix


#: Photos larger than this are handled one at a time (no reading ahead, no writing behind): memory before speed.
OVERLAP_MAX_PIXELS = 8_000_000


def read_ahead(job: Job, overwrite: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
               skip_existing: bool = False, sensor: bool = False) -> Future | None:
    """Start decoding a job's photo on a helper thread, e.g. the first one while PyTorch and the model load (decoders
    release the GIL); hand the result to :func:`run_batch` as ``first``. Standard input is not read ahead: a batch
    that fails to start must not wait for it."""
    if job.source == STDIO:
        return None
    pool = ThreadPoolExecutor(1, thread_name_prefix="read-ahead")
    try:
        return pool.submit(_load, job, overwrite, max_pixels, skip_existing, sensor)
    finally:
        pool.shutdown(wait=False)


def run_batch(denoiser: "Denoiser | ModelChoice", jobs: list[Job], *, overwrite: bool = False, stdout_format: str = "png",
              max_pixels: int = DEFAULT_MAX_PIXELS, on_start: Callable[[int, str | None], None] | None = None,
              on_tile: Callable[[int, int], None] | None = None, first: Future | None = None,
              skip_existing: bool = False, sensor: bool = False) -> Iterator[Result]:
    """Each job's Result, in order. While one photo is denoised the next is read and the one before is written, on
    two helper threads (decoding and encoding release the GIL), so small files cost little more than the network;
    photos over OVERLAP_MAX_PIXELS go one at a time. ``on_start(i, weights)`` is called when job i starts denoising
    (``weights``: what a ModelChoice picked for it, else None). An
    interrupt lets a write in progress finish (outputs stay whole) and stops. With a ModelChoice each photo is
    denoised by the model it picks, and its Result says which. ``first``: the first job as :func:`read_ahead` started
    it, with the same ``overwrite``, ``max_pixels`` and ``skip_existing``. With ``skip_existing`` an output that
    another process finished meanwhile (several runs over one batch) makes the Result ``skipped``, not failed.
    ``sensor``: RAW files keep their sensor data, for a RAW model (inference.raw.RawFirst)."""
    with ThreadPoolExecutor(1, thread_name_prefix="read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="write") as writer:
        behind: tuple[Result, Future | None] | None = None  # the job being written, and its write
        load = functools.partial(_load, overwrite=overwrite, max_pixels=max_pixels, skip_existing=skip_existing,
                                 sensor=sensor)
        ahead = first or (reader.submit(load, jobs[0]) if jobs else None)
        for i, job in enumerate(jobs):
            res, photo = ahead.result()
            big = photo is not None and photo.pixels.shape[0] * photo.pixels.shape[1] > OVERLAP_MAX_PIXELS
            if big and behind is not None:  # one large photo in memory at a time
                yield _finish(*behind)
                behind = None
            following = jobs[i + 1] if i + 1 < len(jobs) else None
            ahead = reader.submit(load, following) if following and not big else None
            model = _model_for(denoiser, photo, res) if photo is not None else None
            if on_start:
                on_start(i, res.weights)
            stored = None
            if model is not None and _denoise(model, photo, res, on_tile):
                stored = writer.submit(_store, photo, job, res, overwrite, stdout_format, skip_existing)
            if behind is not None:
                yield _finish(*behind)
            behind = (res, stored)
            if big:
                yield _finish(*behind)
                behind = None
            if ahead is None and following:
                ahead = reader.submit(load, following)
        if behind is not None:
            yield _finish(*behind)


def _model_for(denoiser: "Denoiser | ModelChoice", photo: Photo, res: Result) -> "Denoiser | None":
    """The model for this photo (None, with the Result's error set, if the chosen one cannot be loaded)."""
    try:
        chosen, res.weights = denoiser.pick(photo)
    except DenoiseError as e:
        res.error, res.exception = str(e), e
        res.seconds += time.perf_counter()
        return None
    return chosen


def _finish(res: Result, stored: Future | None) -> Result:
    """The result once its write (if any) is done; a closed stdout stops the batch."""
    if stored is not None:
        stored.result()
    return res


def _load(job: Job, overwrite: bool, max_pixels: int, skip_existing: bool = False, sensor: bool = False
          ) -> tuple[Result, Photo | None]:
    """A job's Result (its error set when the job cannot start) and its decoded photo (None then); ``sensor`` keeps a
    RAW file's bytes for a RAW model."""
    res = Result(job.source, job.target, ok=False)
    res.seconds = -time.perf_counter()
    if job.error:
        res.error = job.error
        res.seconds = 0.0
        return res, None
    try:
        if job.target != STDIO:
            output_format(job.target)  # fail fast on an unwritable suffix
            if Path(job.target).is_dir():
                raise ImageError(f"output {job.target} is a folder")
            if Path(job.target).exists() and not overwrite:
                raise OutputExistsError(f"output {job.target} exists")
        photo = read_image(sys.stdin.buffer.read() if job.source == STDIO else job.source, max_pixels=max_pixels,
                           raw=True, sensor=sensor)
    except DenoiseError as e:
        _failed(res, e, skip_existing)
        res.seconds += time.perf_counter()
        return res, None
    res.notices = photo.notices
    return res, photo


def _denoise(denoiser: "Denoiser", photo: Photo, res: Result, on_tile: Callable[[int, int], None] | None) -> bool:
    """Denoise the photo's pixels in place; False (and the Result's error set) if that failed."""
    t = time.perf_counter()
    try:
        photo.pixels = denoiser.denoise(photo.pixels, photo.notices, on_tile)
    except DenoiseError as e:
        res.error, res.exception = str(e), e
    except MemoryError:
        res.error = "out of memory (smaller tiles need less)"
    except RuntimeError as e:  # e.g. a GPU out of memory
        res.error = f"failed while denoising: {str(e).splitlines()[0]}"
    res.denoise_seconds = time.perf_counter() - t
    if res.error:
        res.seconds += time.perf_counter()
    return res.error is None


def _failed(res: Result, e: DenoiseError, skip_existing: bool) -> None:
    """Record a job's failure, or, for an output that exists while ``skip_existing``, that it was done elsewhere."""
    if skip_existing and isinstance(e, OutputExistsError):
        res.skipped = True
    else:
        res.error, res.exception = str(e), e


def _store(photo: Photo, job: Job, res: Result, overwrite: bool, stdout_format: str,
           skip_existing: bool = False) -> None:
    """Encode and write the denoised photo (stdout or its target); the Result says whether that worked."""
    try:
        if job.target == STDIO:
            _write_stdout(encode_image(photo, output_format(f"x.{stdout_format}")))
        else:
            write_image(photo, job.target, overwrite=overwrite)
        res.ok = True
        res.megapixels = photo.pixels.shape[0] * photo.pixels.shape[1] / 1e6
    except DenoiseError as e:
        if isinstance(e, StdoutClosed):
            raise
        _failed(res, e, skip_existing)
    finally:
        res.seconds += time.perf_counter()


def stdout_binary():
    """Standard output's byte stream; an ImageError when the process was started with it closed (``>&-``)."""
    if sys.stdout is None:
        raise ImageError("standard output is closed: redirect it to a file or a pipe, or use -o DIR")
    return sys.stdout.buffer


def _write_stdout(data: bytes) -> None:
    """Write the image to stdout and make sure the reader took all of it: a reader that stops early (``| head -c
    10``) may leave before a short image has even filled the pipe, and that is a failure, not a success."""
    out = stdout_binary()
    try:
        out.write(data)
        out.flush()
    except BrokenPipeError:
        silence_stdout()
        raise StdoutClosed("standard output was closed before the whole image was written") from None
    except OSError as e:
        silence_stdout()
        raise ImageError(f"cannot write to standard output: {e.strerror or e}") from None
    if not _pipe_drained(out):
        silence_stdout()
        raise StdoutClosed("the reader of standard output stopped before it had read the whole image")


def silence_stdout() -> None:
    """Point stdout at nothing, so that Python's own flush at exit does not fail (and complain) a second time."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _pipe_drained(stream) -> bool:
    """For a pipe: wait until its reader has taken every byte written (True) or has gone away with bytes left unread
    (False). Anything else (a file, a terminal, a socket, a stream with no file behind it) is True at once."""
    import select
    import stat

    try:
        fd = stream.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return True
        import fcntl
        import termios

        poller = select.poll()
        poller.register(fd, select.POLLERR)
        while True:
            left = int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)
            if left == 0:
                return True
            if poller.poll(20):  # POLLERR: the read end is closed
                return False
    except (OSError, ImportError):  # no FIONREAD on this platform or pipe: trust the write
        return True


#: Below this many megapixels in all, a throughput says more about start-up than about the network: not shown.
MIN_MEGAPIXELS_FOR_SPEED = 1.0


def summary_line(done: int, failed: int, megapixels: float, seconds: float, device: str, *, skipped: int = 0,
                 where: str | None = None, model: str | None = None) -> str:
    """The closing line of a batch: counts, where the outputs went and which model made them, and the network's
    throughput (denoising time only, not loading, decoding or writing; three significant figures, so a slow device
    reads e.g. 0.0123 MP/s, not 0.00) once there were enough pixels for it to mean something."""
    line = f"{done} denoised, {failed} failed"
    if skipped:
        line += f", {skipped} skipped (output exists)"
    if done and where:
        line += f" · {where}"
    if done and model:
        line += f" · {model}"
    if done and seconds > 0 and megapixels >= MIN_MEGAPIXELS_FOR_SPEED:
        line += f" · {megapixels / seconds:.3g} MP/s on {device}"
    elif done:
        line += f" · on {device}"
    return line
