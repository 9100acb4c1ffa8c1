"""What every command shares: the stderr console, option types, and the one place errors become exit codes.

Nothing here imports torch: `--help`, `weights list` and usage errors answer at once."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Annotated, Callable, Literal, Optional, TypeVar

import typer
from rich.console import Console

from ..errors import (CheckpointError, ConfigError, CorruptWeightsError, DenoiseError, DeviceError, ImageTooLargeError,
                      OutputExistsError, WeightsError, WeightsUnavailableError)

err = Console(stderr=True, highlight=False, soft_wrap=True)


def shown(text: object) -> str:
    """User-supplied text (a path, a message quoting one) made safe to print through rich: markup such as ``[bold]``
    is escaped, and control characters (an ESC in a file name) are written as ``\\xNN`` instead of reaching the
    terminal."""
    from rich.markup import escape

    s = "".join(c if c.isprintable() or c == " " else (f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}")
                for c in str(text))
    return escape(s)


def error_line(text: object) -> None:
    """One 'error:' line on stderr, the text printed as it is."""
    err.print(f"[bold red]error:[/] {shown(text)}")


def note_line(text: object) -> None:
    """One 'note:' line on stderr, the text printed as it is."""
    err.print(f"[yellow]note:[/] {shown(text)}")


def say(text: object) -> None:
    """A plain line on stderr, the text printed as it is."""
    err.print(shown(text))

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: Which errors are the user's settings (exit 2) rather than a failure while working (exit 1). Per-file failures in a
#: batch are reported per file and make the batch exit 1; these are for errors that stop a command.
USAGE_ERRORS: tuple[type[DenoiseError], ...] = (ConfigError, WeightsError, CheckpointError, DeviceError)


def exit_code(error: DenoiseError) -> int:
    """The exit code a command ends with when ``error`` stops it."""
    return EXIT_USAGE if isinstance(error, USAGE_ERRORS) else EXIT_FAILED


#: What a CLI user can do about an error, by its class: the library's messages name no flags, these do.
HINTS: dict[type[DenoiseError], str] = {
    OutputExistsError: "use --overwrite to replace it",
    ImageTooLargeError: "--max-pixels raises the limit",
    WeightsUnavailableError: "or pass --weights PATH",
    CorruptWeightsError: "`denoise-cli weights download NAME --force` fetches it again",
}


def explain(error: DenoiseError | str | None) -> str:
    """An error's message with the CLI's hint for its class, if there is one."""
    hint = next((h for cls, h in HINTS.items() if isinstance(error, cls)), None)
    return f"{error} ({hint})" if hint else str(error)


@contextmanager
def about(option: str):
    """Name the option a library ConfigError was about: its messages speak of values, not flags."""
    try:
        yield
    except ConfigError as e:
        raise ConfigError(f"{option}: {e}") from None


class RichReporter:
    """The CLI's progress bars, drawn from the library's Reporter calls (denoise_cli.progress): one bar per running
    task, on stderr, only on a terminal, gone when the task is done."""

    def __init__(self, quiet: bool = False) -> None:
        self.enabled = not quiet and err.is_terminal
        self.bar = None
        self.tasks: dict[str, int] = {}

    def start(self, task: str, total: float | None, description: str = "") -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True)
            self.bar.start()
        self.tasks[task] = self.bar.add_task(shown(description or task), total=total, info="")

    def update(self, task: str, *, completed: float | None = None, advance: float = 0.0, info: str = "") -> None:
        if self.bar is not None and task in self.tasks:
            self.bar.update(self.tasks[task], completed=completed, advance=advance or None, info=shown(info))

    def done(self, task: str) -> None:
        if self.bar is not None and task in self.tasks:
            self.bar.remove_task(self.tasks.pop(task))
            if not self.tasks:
                self.bar.stop()
                self.bar = None

    def __enter__(self) -> "RichReporter":
        return self

    def __exit__(self, *_) -> None:
        for task in list(self.tasks):
            self.done(task)


def write_summary(text: str, stream) -> None:
    """Write a machine-readable summary to ``stream`` (stdout, usually); a full disk or a closed pipe there is one
    error line and exit 1, not a traceback."""
    import sys

    from ..inference.batch import silence_stdout

    try:
        stream.write(text)
        stream.flush()
    except OSError as e:
        if stream is sys.stdout:
            silence_stdout()
        raise fail(f"cannot write the summary: {e.strerror or e}", EXIT_FAILED) from None


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print one 'error:' line on stderr and return the Exit to raise."""
    error_line(message)
    return typer.Exit(code)


F = TypeVar("F", bound=Callable)


def reports_errors(interrupted: str = "interrupted") -> Callable[[F], F]:
    """Decorate a command: a DenoiseError becomes one 'error:' line and its exit code, Ctrl-C the message
    ``interrupted`` and exit 130 — no traceback reaches the user."""
    def wrap(command: F) -> F:
        @functools.wraps(command)
        def run(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except DenoiseError as e:
                raise fail(explain(e), exit_code(e)) from None
            except KeyboardInterrupt:
                say(interrupted.format(**kwargs))
                raise typer.Exit(EXIT_INTERRUPTED) from None
        return run  # type: ignore[return-value]
    return wrap


def flag(*names: str, help: str) -> typer.models.OptionInfo:
    """An on/off option with no value (no type column in --help)."""
    return typer.Option(*names, help=help, metavar="")


WeightsOpt = Annotated[Optional[str], typer.Option(
    "--weights", "-w", metavar="NAME|PATH|hf://…",
    help="Registry NAME (see `weights list`), a .safetensors PATH or run folder, or "
         "hf://owner/repo/file.safetensors[@revision]. Default: the registry default.")]
DeviceOpt = Annotated[str, typer.Option(metavar="auto|cpu|cuda[:N]|mps",
                                        help="Where to run: auto picks CUDA, then MPS, then the CPU.")]
EnsembleOpt = Annotated[bool, flag("--ensemble", help="Average 8 passes over rotated/mirrored copies of each image: a "
                                                     "little cleaner, about 6× slower.")]
TrainPrecisionOpt = Annotated[Literal["fp32", "bf16"], typer.Option(
    help="Training precision: bf16 runs the network under autocast (for GPUs with bf16 tensor cores; on CPUs "
         "without bf16 units it is slower).")]
TimeBudgetOpt = Annotated[Optional[str], typer.Option(metavar="DURATION", help="Training time, e.g. 30m or 1h30m.")]
IterationsOpt = Annotated[Optional[int], typer.Option(min=1, metavar="STEPS",
                                                      help="Training steps (with or instead of --time-budget).")]
NoiseOpt = Annotated[str, typer.Option("--noise", "-n", metavar="SPEC",
                                       help="awgn:SIGMA (0–255), awgn:LO-HI, hg:ALPHA,DELTA, mg:SCALE, camera:ISO, or pipeline (a random real-camera pipeline per image; pipeline:A fixes its sensor noise, e.g. 0.002).")]
VerboseOpt = Annotated[bool, flag("--verbose", "-v", help="Also print the training internals (settings, phases).")]


def budget(time_budget: str | None, iterations: int | None):
    """The training Budget for --time-budget/--iterations (ConfigError when neither or a bad one is given)."""
    from ..training.runs import Budget, parse_duration

    if time_budget is None and iterations is None:
        raise ConfigError("give --time-budget (e.g. 30m) and/or --iterations")
    with about("--time-budget"):
        seconds = parse_duration(time_budget) if time_budget else None
    with about("--iterations"):
        return Budget(iterations, seconds)


def _plain_types(params: list, ctx) -> list:
    """Drop Typer's type column where it says nothing: the help flag, and arguments (their metavar names them)."""
    for p in params:
        if p.param_type_name == "argument" or "--help" in p.opts:
            p.display_type_rich = lambda ctx: ""
    return params


def _usage(command, ctx) -> list[str]:
    """The usage line's pieces in the usual notation: NAME, NAME... (one or more), [NAME]... (none or more)."""
    params = command.get_params(ctx)
    pieces = ["[OPTIONS]"] if any(p.param_type_name == "option" for p in params) else []
    for p in params:
        if p.param_type_name == "argument":
            name = p.metavar or p.name.upper()
            many = p.nargs == -1
            pieces.append((f"{name}..." if many else name) if p.required else (f"[{name}]..." if many else f"[{name}]"))
    return pieces


class Command(typer.core.TyperCommand):
    """A command whose --help shows a value's form (DIR, DURATION, a list of choices) and no type names."""

    def get_params(self, ctx):
        return _plain_types(super().get_params(ctx), ctx)

    def collect_usage_pieces(self, ctx):
        return _usage(self, ctx)


class Group(typer.core.TyperGroup):
    """The same for command groups (the top level and `weights`)."""

    def get_params(self, ctx):
        return _plain_types(super().get_params(ctx), ctx)
