"""The architecture registry: the name a checkpoint's metadata gives (``arch``) → its config class and network, so a
weights file describes the model it holds and nothing downstream names a network class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from .mwcnn import MWCNN, MWCNNConfig


@dataclass(frozen=True)
class Architecture:
    """One kind of denoiser: its config from a checkpoint's JSON (bounds-checked, ValueError otherwise) and its
    network class, built as ``network(config)``."""

    name: str
    config_from_dict: Callable[[dict[str, Any]], Any]
    network: type[nn.Module]


ARCHITECTURES: dict[str, Architecture] = {
    "mwcnn": Architecture("mwcnn", MWCNNConfig.from_dict, MWCNN),
}


def architecture_of(model: nn.Module) -> str:
    """The registry name of a built network (what a saved checkpoint records as ``arch``)."""
    for name, arch in ARCHITECTURES.items():
        if type(model) is arch.network:
            return name
    raise KeyError(f"{type(model).__name__} is not a registered architecture")
