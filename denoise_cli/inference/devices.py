"""Where and how a network runs: the device (CUDA, MPS, CPU), the precision, and how large a tile the device takes.

Automatic tiling bounds memory. On the CPU that means 768² tiles above 1 MP. On a CUDA GPU the whole image runs at once
whenever its estimated activations fit in half the free GPU memory (cutting and blending tiles on the host costs more
time there than it saves); a larger image gets the largest tiles that fit.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import DeviceError
from ..models.mwcnn import MULTIPLE
from .tiles import DEFAULT_OVERLAP

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
AUTO_TILE_PIXELS = 1024 * 1024  # CPU/MPS: above this many pixels, tile automatically
AUTO_TILE = 768  # with its context a 864² window: on a CPU the network's fastest size, and little context overhead
GPU_MEMORY_SHARE = 0.5  # CUDA: an automatic run may use this share of the free memory


def activation_bytes_per_pixel(model: nn.Module, precision: str) -> int:
    """A generous estimate of inference memory per image pixel: 2 values per first-level channel (above the peaks
    measured for both MWCNN sizes; tests/test_inference.py pins them)."""
    return 2 * model.config.widths[0] * (4 if precision == "fp32" else 2)


def free_gpu_bytes(device: torch.device) -> int:
    """Memory a new allocation can use: free on the device plus what PyTorch holds cached but unused."""
    free = torch.cuda.mem_get_info(device)[0]
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def auto_tile(h: int, w: int, device_type: str, free_bytes: int | None = None, bytes_per_pixel: int = 256,
              overlap: int = DEFAULT_OVERLAP) -> int | None:
    """The automatic tile side for an h×w image (None: whole image). CUDA: whole if it fits in
    GPU_MEMORY_SHARE of ``free_bytes``, else the largest tile that does (never under AUTO_TILE);
    elsewhere AUTO_TILE above AUTO_TILE_PIXELS."""
    if device_type != "cuda" or free_bytes is None:
        return AUTO_TILE if h * w > AUTO_TILE_PIXELS else None
    budget = GPU_MEMORY_SHARE * free_bytes / bytes_per_pixel  # pixels that fit
    if h * w <= budget:
        return None
    side = int(budget**0.5) - 2 * overlap
    return max(AUTO_TILE, side // MULTIPLE * MULTIPLE)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (x86 AVX512-BF16 or AMX, Arm BF16), read from /proc/cpuinfo;
    False where that cannot be read (bf16 is then emulated and slower than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    words = set(flags.split())
    return bool(words & {"avx512_bf16", "amx_bf16", "bf16"})


def resolve_precision(precision: str, device: torch.device) -> str:
    """The arithmetic for "auto": bf16 on a CPU with bf16 units, where it is faster than fp32 and costs next to
    nothing in PSNR (benchmarks/precision.py measures how much); fp32 elsewhere. Any other name is returned as it is."""
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def pick_device(name: str = "auto") -> torch.device:
    """auto → CUDA, then MPS, then CPU; an explicit name (cpu, mps, cuda or cuda:N) must be available."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name}: no CUDA GPU is available to this PyTorch build")
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise DeviceError(f"device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), cuda:0 to "
                          f"cuda:{torch.cuda.device_count() - 1}")
    if kind == "mps" and not has_mps:
        raise DeviceError("device mps: Apple MPS is not available here")
    return torch.device(name)
