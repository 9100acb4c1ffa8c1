"""The `denoise-cli` command: each sub-command parses its options, calls the library and prints. Importing this
package does not import torch, so `--help` and usage errors answer at once."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from . import denoise, measure, profiles, train, weights
from ._common import Command, Group

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich", cls=Group,
                  help="Denoise photographs with networks that learn a camera's noise from noisy pictures alone "
                       "(Wu et al., Unpaired Learning of Deep Image Denoising, ECCV 2020).")


def _version(value: bool) -> None:
    if value:
        print(f"denoise-cli {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, metavar="",
                                               help="Show the version and exit.")] = False) -> None:
    """Denoise photographs; learn a camera's noise from its own noisy pictures."""


app.command(cls=Command)(denoise.denoise)
app.command(cls=Command)(train.fit)
app.command(cls=Command)(train.distill)
app.command(cls=Command)(train.adapt)
app.command(cls=Command)(measure.synth)
app.command("eval", cls=Command)(measure.eval_cmd)
app.add_typer(profiles.app, name="profiles")
app.add_typer(weights.app, name="weights")
