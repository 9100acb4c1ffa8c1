"""The MWCNN for inference, each wavelet transform folded into the convolution next to it.

A Haar DWT followed by a 3×3 convolution is one linear map: a 6×6 convolution with stride 2 on the full-resolution
input, with the same multiply-adds. A 3×3 convolution followed by the inverse DWT is a 3×3 convolution whose outputs
are already mixed into pixel order, then a pixel shuffle. Folding removes three transform passes and three matrix
products over large tensors, about a third of the CPU time outside the convolutions; the function is the same to
float rounding. Training keeps the plain :class:`~denoise_cli.models.mwcnn.MWCNN` (its checkpoints are unchanged).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .mwcnn import HAAR, MULTIPLE, MWCNN, full_precision, pad_bottom_right


def _dwt_then(conv: nn.Conv2d) -> nn.Conv2d:
    """conv(dwt(x)) as one stride-2 6×6 convolution of x: kernel tap (2a+dy, 2b+dx) is the 3×3 tap (a, b) applied to
    the four sub-bands' weights of block pixel (dy, dx)."""
    out_c, in4 = conv.weight.shape[:2]
    c = in4 // 4
    w = torch.einsum("okcab,kp->ocabp", conv.weight.detach().float().view(out_c, 4, c, 3, 3), HAAR)
    w = w.reshape(out_c, c, 3, 3, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(out_c, c, 6, 6)
    folded = nn.Conv2d(c, out_c, 6, stride=2, padding=2)
    folded.weight.data.copy_(w)
    folded.bias.data.copy_(conv.bias.detach())
    return folded


def _then_iwt(conv: nn.Conv2d) -> nn.Conv2d:
    """A conv whose pixel_shuffle equals iwt(conv(x)): its 4C outputs mixed from sub-bands into block pixels."""
    out4 = conv.weight.shape[0]
    c = out4 // 4
    w = torch.einsum("kcihw,kp->cpihw", conv.weight.detach().float().view(4, c, *conv.weight.shape[1:]), HAAR)
    b = torch.einsum("kc,kp->cp", conv.bias.detach().float().view(4, c), HAAR)
    folded = nn.Conv2d(conv.in_channels, out4, 3, padding=1)
    folded.weight.data.copy_(w.reshape(conv.weight.shape))
    folded.bias.data.copy_(b.reshape(out4))
    return folded


class FoldedMWCNN(nn.Module):
    """An :class:`MWCNN`'s function with the wavelet transforms folded into its convolutions (see the module doc)."""

    def __init__(self, model: MWCNN) -> None:
        super().__init__()
        self.config = model.config
        self.down1 = _dwt_then(model.enc1[0])
        self.enc1 = model.enc1[1:]
        self.down2 = nn.Sequential(_dwt_then(model.enc2[0]), *model.enc2[1:])
        self.down3 = nn.Sequential(_dwt_then(model.bottom[0][0]), *model.bottom[0][1:], _then_iwt(model.bottom[1]))
        self.up2 = nn.Sequential(*model.dec2[:-1], _then_iwt(model.dec2[-1]))
        self.dec1 = model.dec1[:-1]
        self.up1 = _then_iwt(model.dec1[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same as MWCNN.forward: denoise x (N,C,H,W in [0,1]), any H, W; the ends in fp32 under autocast."""
        h, w = x.shape[-2:]
        xp = pad_bottom_right(x, (-h) % MULTIPLE, (-w) % MULTIPLE)
        e1 = self.enc1(full_precision(self.down1, xp))
        e2 = self.down2(e1)
        d2 = F.pixel_shuffle(self.down3(e2), 2) + e2
        d1 = F.pixel_shuffle(self.up2(d2), 2) + e1
        out = full_precision(lambda t: F.pixel_shuffle(self.up1(t), 2), self.dec1(d1)) + xp[:, : self.config.channels]
        return out[..., :h, :w]


def fold_wavelets(model: nn.Module) -> nn.Module:
    """The folded form of an MWCNN for inference (the model itself unchanged; layers that need no folding are
    shared with it); other modules as given."""
    if not isinstance(model, MWCNN):
        return model
    return FoldedMWCNN(model).to(next(model.parameters()).device).eval()
