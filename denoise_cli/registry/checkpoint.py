"""Model files: safetensors weights with the architecture in the metadata (never pickled code)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..io import write_bytes_atomic
from ..models.architectures import ARCHITECTURES, architecture_of
from ..errors import CheckpointError

FORMAT_VERSION = "1"



def save_model(model: torch.nn.Module, path: str | os.PathLike, *, half: bool = False, **meta: str) -> None:
    """Save weights (optionally as fp16 to halve the file) with the config in the metadata."""
    tensors = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in model.state_dict().items()}
    metadata = {"format_version": FORMAT_VERSION, "arch": architecture_of(model),
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


def load_model(path: str | os.PathLike) -> torch.nn.Module:
    """Build the model a weights file's metadata describes and load its weights as fp32. The metadata is checked
    against the registry's bounds and the tensors' shapes against the architecture before anything large is
    allocated; weights that are not finite numbers are refused."""
    meta = read_metadata(path)
    arch = ARCHITECTURES.get(meta.get("arch", ""))
    if arch is None or "config" not in meta:
        known = ", ".join(ARCHITECTURES)
        raise CheckpointError(f"{path} is not a denoise-cli checkpoint (architecture {meta.get('arch')!r}; "
                              f"known: {known})")
    try:
        config = arch.config_from_dict(json.loads(meta["config"]))
    except (ValueError, TypeError) as e:  # json.JSONDecodeError is a ValueError
        raise CheckpointError(f"{path}: {str(e).splitlines()[0]}") from None
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in arch.network(config).state_dict().items()}
    found = tensor_shapes(path)
    if found != expected:
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
        detail = f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra else f"shapes of {wrong[:3]}"
        raise CheckpointError(f"{path} does not match its {arch.name} config ({detail})")
    model = arch.network(config)
    try:
        state = {k: v.float() for k, v in load_file(str(path)).items()}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({str(e).splitlines()[0]})") from None
    bad = [k for k, v in state.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{path} holds weights that are not finite numbers (NaN or infinity in {bad[0]}); "
                              "the file is corrupt")
    model.load_state_dict(state)
    return model.eval()


def tensor_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor in a safetensors file, read from its header alone."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from None
