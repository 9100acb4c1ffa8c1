"""`python -m denoise_cli` runs the CLI."""

from .cli import app

app(prog_name="denoise-cli")
