"""Model files: safetensors weights with the architecture in the metadata (never pickled code)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .io import write_bytes_atomic
from .models.mwcnn import MWCNN, MWCNNConfig

FORMAT_VERSION = "1"


class CheckpointError(Exception):
    """A weights file that is missing, corrupt or not a denoise-cli model."""


def save_model(model: MWCNN, path: str | os.PathLike, *, half: bool = False, **meta: str) -> None:
    """Save weights (optionally as fp16 to halve the file) with the config in the metadata."""
    tensors = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in model.state_dict().items()}
    metadata = {"format_version": FORMAT_VERSION, "arch": "mwcnn",
                "config": json.dumps(model.config.to_dict()), **meta}
    write_bytes_atomic(Path(path), canonical_header(save(tensors, metadata=metadata)))


def canonical_header(data: bytes) -> bytes:
    """The same safetensors file with its JSON header's keys sorted, so equal weights and metadata give
    equal bytes and sha256 (safetensors writes metadata in a per-process random hash order)."""
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + n]), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    if len(header) > n:  # escaped differently from safetensors' writer: keep its own header
        return data
    return data[:8] + header.ljust(n, b" ") + data[8 + n :]


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a safetensors file, raising CheckpointError if it is not one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except FileNotFoundError:
        raise CheckpointError(f"weights file {path} not found") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from None


def load_model(path: str | os.PathLike) -> MWCNN:
    """Build the model described in a weights file's metadata and load its weights (fp32)."""
    meta = read_metadata(path)
    if meta.get("arch") != "mwcnn" or "config" not in meta:
        raise CheckpointError(f"{path} is not a denoise-cli MWCNN checkpoint (no arch/config metadata)")
    model = MWCNN(MWCNNConfig.from_dict(json.loads(meta["config"])))
    try:
        state = {k: v.float() for k, v in load_file(str(path)).items()}
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError, OSError) as e:
        raise CheckpointError(f"{path} does not match its architecture ({str(e).splitlines()[0]})") from None
    return model.eval()
