"""MWCNN: a U-Net whose down/up-sampling is the 2-D Haar wavelet transform (Liu et al., 2018).

The Haar DWT is lossless and turns an H×W×C map into H/2×W/2×4C, so nothing is thrown away
when the network goes coarser; the inverse transform brings it back. Output is residual.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 3
MULTIPLE = 2**LEVELS  # input sides must be multiples of this; `MWCNN.forward` pads to it
MAX_WIDTH, MAX_CONVS = 512, 8  # bounds on a checkpoint's config: twice the authors' widths, their convs doubled
MAX_GUIDES = 8


@dataclass(frozen=True)
class MWCNNConfig:
    """Architecture knobs: image channels (1 gray, 3 colour, 4 Bayer planes), guide channels read alongside them but
    not denoised (a RAW model's per-pixel noise level), width per level and 3×3 convs per block side."""

    channels: int = 3
    widths: tuple[int, int, int] = (32, 64, 128)
    convs: int = 2
    guides: int = 0

    def to_dict(self) -> dict:
        """JSON-ready; ``guides`` only where there are any, so models without them describe themselves as before."""
        d = asdict(self)
        if not self.guides:
            del d["guides"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MWCNNConfig":
        """The config a checkpoint describes; ValueError for anything outside sane bounds (a file's metadata is
        checked before any memory is allocated for it)."""
        try:
            channels, convs, guides = int(d["channels"]), int(d["convs"]), int(d.get("guides", 0))
            widths = tuple(int(w) for w in d["widths"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"malformed MWCNN config ({type(e).__name__}: {e})") from None
        if channels not in (1, 3, 4) or len(widths) != LEVELS or not all(1 <= w <= MAX_WIDTH for w in widths) \
                or not 1 <= convs <= MAX_CONVS or not 0 <= guides <= MAX_GUIDES:
            raise ValueError(f"MWCNN config out of bounds: channels {channels}, widths {list(widths)}, convs {convs}, "
                             f"guides {guides} (expected 1, 3 or 4 channels, {LEVELS} widths of 1–{MAX_WIDTH}, "
                             f"1–{MAX_CONVS} convs, 0–{MAX_GUIDES} guides)")
        return cls(channels=channels, widths=widths, convs=convs, guides=guides)


#: Named widths: "small" is the fast, embeddable model; "full" matches the authors' MWCNN widths.
ARCHS: dict[str, dict] = {
    "small": {"widths": (32, 64, 128), "convs": 2},
    "wide": {"widths": (48, 96, 192), "convs": 2},
    "full": {"widths": (160, 256, 256), "convs": 4},
}


#: The 2×2 Haar basis: rows LL, HL, LH, HH over a block's pixels in pixel_unshuffle's order (top-left, top-right,
#: bottom-left, bottom-right). Orthonormal, so its transpose inverts it.
HAAR = torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, 1.0, -1.0, 1.0], [-1.0, -1.0, 1.0, 1.0], [1.0, -1.0, -1.0, 1.0]]) / 2


def dwt(x: torch.Tensor) -> torch.Tensor:
    """Haar DWT: (N,C,H,W) → (N,4C,H/2,W/2) as [LL, HL, LH, HH] blocks of C channels (one pixel_unshuffle and one
    4×4 matrix product, not four strided reads)."""
    n, c, h, w = x.shape
    blocks = F.pixel_unshuffle(x, 2).view(n, c, 4, h // 2, w // 2)
    return torch.einsum("kp,ncpyx->nkcyx", HAAR.to(x.dtype).to(x.device), blocks).reshape(n, 4 * c, h // 2, w // 2)


def iwt(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dwt` (exact: the Haar basis is orthonormal)."""
    n, c4, h, w = y.shape
    c = c4 // 4
    bands = y.view(n, 4, c, h, w)
    blocks = torch.einsum("kp,nkcyx->ncpyx", HAAR.to(y.dtype).to(y.device), bands).reshape(n, c4, h, w)
    return F.pixel_shuffle(blocks, 2)


def full_precision(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """fn(x) in fp32 whatever autocast is on: the network's ends, the first and last wavelet transform and conv, work
    on the photo's own values, which bf16's 8-bit mantissa would round to about half an 8-bit level (a no-op in
    fp32)."""
    with torch.autocast(x.device.type, enabled=False):
        return fn(x.float())


def pad_bottom_right(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """Pad ph rows and pw columns by reflection, or by repeating the edge where the image is too small to reflect
    (a side of a few pixels)."""
    if not (ph or pw):
        return x
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def _block(c_in: int, c_out: int, n: int, last_relu: bool = True) -> nn.Sequential:
    """n 3×3 convs, ReLU after each (the last one optional); the first maps c_in → c_out."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1))
        if i < n - 1 or last_relu:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MWCNN(nn.Module):
    """Three-level MWCNN with additive skips between encoder and decoder and a residual output."""

    def __init__(self, config: MWCNNConfig = MWCNNConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        w1, w2, w3 = config.widths
        n = config.convs
        self.enc1 = _block(4 * (c + config.guides), w1, n)
        self.enc2 = _block(4 * w1, w2, n)
        self.bottom = nn.Sequential(_block(4 * w2, w3, n), nn.Conv2d(w3, 4 * w2, 3, padding=1))
        self.dec2 = nn.Sequential(_block(w2, w2, max(n - 1, 1)), nn.Conv2d(w2, 4 * w1, 3, padding=1))
        self.dec1 = nn.Sequential(_block(w1, w1, max(n - 1, 1)), nn.Conv2d(w1, 4 * c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise x (N,C,H,W in [0,1]; with guides, N,C+G,H,W and the first C channels denoised); any H, W
        (reflect-padded to a multiple of 8 inside)."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % MULTIPLE, (-w) % MULTIPLE
        xp = pad_bottom_right(x, ph, pw)
        e1 = self.enc1[1:](full_precision(lambda t: self.enc1[0](dwt(t)), xp))
        e2 = self.enc2(dwt(e1))
        d2 = iwt(self.bottom(dwt(e2))) + e2
        d1 = iwt(self.dec2(d2)) + e1
        out = full_precision(lambda t: iwt(self.dec1[-1](t)), self.dec1[:-1](d1)) + xp[:, : self.config.channels]
        return out[..., :h, :w]


def build_mwcnn(channels: int = 3, arch: str = "small", guides: int = 0) -> MWCNN:
    """Build an MWCNN by arch name ("small", "wide" or "full")."""
    spec = ARCHS[arch]
    return MWCNN(MWCNNConfig(channels=channels, widths=tuple(spec["widths"]), convs=spec["convs"], guides=guides))
