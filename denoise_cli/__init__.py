"""denoise-cli: unpaired learning of deep image denoising (Wu et al., ECCV 2020) for photographs.

The library entry points are loaded on first use, so that importing the package (as the CLI does for `--help`)
does not import torch."""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

__all__ = ["__version__", "denoise_image", "load_denoiser", "Denoiser", "Photo", "read_image", "write_image",
           "DenoiseError"]

_WHERE = {"denoise_image": "api", "load_denoiser": "api", "Photo": "io", "read_image": "io", "write_image": "io",
          "DenoiseError": "errors", "Denoiser": "inference.denoiser"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'denoise_cli' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
