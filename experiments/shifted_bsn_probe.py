"""Probe: a full-resolution blind-spot U-Net whose hole is a (2r+1)² square, for spatially correlated sRGB noise.

    python experiments/shifted_bsn_probe.py Canon80D --hole 1 --minutes 25

Stage 1 denoises pixel-shuffled ×4 sub-images: the shuffle breaks the noise's spatial correlation but the network then
sees a 4× coarser photo, and its blind-spot mean μ is far below the noisy photo on PolyU. Here the network stays at
full resolution and the correlation is excluded instead: four row-causal U-Nets (Laine et al., NeurIPS 2019) on the
photo rotated by 0/90/180/270°, each shifted down by r+1 rows, so together they see everything except the
(2r+1)² square around the pixel. Trained by MSE to the noisy photo on that camera's noisy crops only; the output is
fused with the photo by local fusion (σ² from the noise level function of the photos' ×4 sub-images) and the guided
filter, as `fit` does. Replicated borders inside the U-Net: with zero padding a network trained on small crops learned
where the top border was and failed on whole photos. References are read only to print PSNR at the end, next to the
kept `local` stage 1 of runs/real_cameras (when there) and the guided filter alone on the noisy photo.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from denoise_cli.evaluation import metrics
from denoise_cli.io import list_images, read_named, to_channels
from denoise_cli.training.guided_filter import guided_filter
from denoise_cli.training.local_fusion import local_fusion
from denoise_cli.training.fit import score_levels

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "real-pairs" / "PolyU"


@dataclass(frozen=True)
class HoleBSNConfig:
    channels: int = 3
    width: int = 32
    levels: int = 4  # U-Net scales (3 poolings)
    hole: int = 1  # the square left out is (2·hole+1)² pixels


def shift_down(x: torch.Tensor, rows: int, mode: str = "constant") -> torch.Tensor:
    """Rows moved down: row i then holds what row i − rows held; above the top, zeros or (replicate) the top row."""
    return F.pad(x, (0, 0, rows, 0), mode=mode)[:, :, : x.shape[2], :]


class UpwardConv(nn.Module):
    """3×3 conv + leaky ReLU whose output row i sees input rows ≤ i only. The border is replicated, not zero: zeros
    would tell every deep feature how far it is from the top, and a network trained on crops then fails on photos."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(F.pad(x, (1, 1, 2, 0), mode="replicate")), 0.1)


class UpwardUNet(nn.Module):
    """A U-Net whose output row i sees input rows ≤ i: each 2× pooling follows a one-row shift, so a pooled row holds
    only rows at or above both rows it is upsampled back to."""

    def __init__(self, c_in: int, width: int, levels: int) -> None:
        super().__init__()
        self.down = nn.ModuleList([nn.Sequential(UpwardConv(c_in if i == 0 else width, width),
                                                 UpwardConv(width, width)) for i in range(levels)])
        self.bottom = UpwardConv(width, width)
        self.up = nn.ModuleList([nn.Sequential(UpwardConv(2 * width, width), UpwardConv(width, width))
                                 for _ in range(levels - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = F.max_pool2d(shift_down(x, 1, "replicate"), 2)  # row −1 := row 0, still above
        x = self.bottom(x)
        for block in self.up:
            x = block(torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skips.pop()], 1))
        return x


class HoleBSN(nn.Module):
    """μ (N,C,H,W) of each pixel from everything outside the (2·hole+1)² square around it; any H, W."""

    def __init__(self, config: HoleBSNConfig = HoleBSNConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.unet = UpwardUNet(config.channels, w, config.levels)
        self.head = nn.Sequential(nn.Conv2d(4 * w, w, 1), nn.LeakyReLU(0.1), nn.Conv2d(w, config.channels, 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        m = 2 ** (self.config.levels - 1)
        h, w = y.shape[-2:]
        x = y - 0.5
        if h % m or w % m:  # zeros (mid-gray): a copied border would bring pixels of the square back in view
            x = F.pad(x, (0, (-w) % m, 0, (-h) % m))
        views = []
        for k in range(4):
            f = shift_down(self.unet(torch.rot90(x, k, (2, 3))), self.config.hole + 1)
            views.append(torch.rot90(f, -k, (2, 3)))
        return self.head(torch.cat(views, 1))[..., :h, :w] + 0.5


def tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of a (clipped to [0,1]) against the reference b, on the 0–1 scale."""
    return metrics.psnr(b, np.clip(a, 0, 1), data_range=1.0)


def check_blind(net: HoleBSN) -> int:
    """The nearest offset (Chebyshev distance) at which the centre output sees the input: must exceed the hole."""
    y = torch.rand(1, 3, 32, 32, requires_grad=True)
    net(y)[0, :, 16, 16].sum().backward()
    g = y.grad.abs().sum(1)[0]
    near = [max(abs(i - 16), abs(j - 16)) for i, j in zip(*np.nonzero(g.numpy() > 0))]
    return min(near)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("camera")
    ap.add_argument("--hole", type=int, default=1)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--minutes", type=float, default=25)
    ap.add_argument("--patch", type=int, nargs=2, default=[64, 128], help="crop sides drawn from (multiples of 16)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "shifted_bsn.jsonl"))
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    noisy_dir = ROOT / "runs" / "real_cameras" / "inputs" / args.camera
    files = list_images(noisy_dir)
    photos = [to_channels(read_named(f).pixels, 3) for f in files]
    net = HoleBSN(HoleBSNConfig(width=args.width, hole=args.hole))
    print("nearest seen offset:", check_blind(net), "hole", args.hole, flush=True)
    opt = torch.optim.Adam(net.parameters(), args.lr)
    t0, step, budget = time.time(), 0, args.minutes * 60
    while time.time() - t0 < budget:
        lr = args.lr * 0.5 * (1 + np.cos(np.pi * min(1.0, (time.time() - t0) / budget)))
        for g in opt.param_groups:
            g["lr"] = lr
        batch, side = [], int(rng.integers(args.patch[0] // 16, args.patch[1] // 16 + 1)) * 16
        for _ in range(max(1, round(args.batch * (64 / side) ** 2))):  # about batch × 64² pixels a step
            p = photos[rng.integers(len(photos))]
            i, j = rng.integers(p.shape[0] - side + 1), rng.integers(p.shape[1] - side + 1)
            t = p[i:i + side, j:j + side]
            if rng.random() < 0.5:
                t = t[:, ::-1]
            if rng.random() < 0.5:
                t = t[::-1]
            batch.append(tensor(t.copy())[0])
        y = torch.stack(batch)
        loss = F.mse_loss(net(y), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            print(f"step {step} loss {loss.item():.6f} {time.time() - t0:.0f}s", flush=True)
        if step % 1000 == 0:
            with torch.no_grad():
                y0 = tensor(photos[0])
                print("  mean |μ − y| at 64 / 512 px:", float((net(y0[..., :64, :64]) - y0[..., :64, :64]).abs().mean()),
                      float((net(y0) - y0).abs().mean()), flush=True)
    levels = score_levels(photos, "real")  # on the ×4 sub-images, where neighbouring noise is nearly independent
    (ROOT / "runs" / "probes").mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), ROOT / "runs" / "probes" / f"shifted_bsn_{args.camera}_h{args.hole}.pt")
    rows: dict[str, list[float]] = {}
    net.eval()
    for f, y in zip(files, photos):
        x = to_channels(read_named(DATA / "clean" / f.name).pixels, 3)
        with torch.no_grad():
            yt = tensor(y)
            mu = net(yt)
            fused = local_fusion(yt, mu, levels.variance(yt))[0][0].numpy().transpose(1, 2, 0)
        stage1 = ROOT / "runs" / "real_cameras" / "local" / args.camera / "denoised" / (f.stem + ".png")
        res = {"noisy": psnr(y, x), "mu": psnr(mu[0].numpy().transpose(1, 2, 0), x),
               "fused": psnr(fused, x), "fused+gf": psnr(guided_filter(fused, y, 1, 0.01), x),
               "guided filter alone": psnr(guided_filter(y, y, 1, 0.01), x)}
        if stage1.exists():
            res["stage1 (local)"] = psnr(to_channels(read_named(stage1).pixels, 3), x)
        for k, v in res.items():
            rows.setdefault(k, []).append(v)
    summary = {k: round(float(np.mean(v)), 2) for k, v in rows.items()}
    rec = {"camera": args.camera, "hole": args.hole, "width": args.width, "minutes": args.minutes, "steps": step,
           "patch": list(args.patch), "batch": args.batch, **summary}
    print(json.dumps(rec), flush=True)
    with open(args.out, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
