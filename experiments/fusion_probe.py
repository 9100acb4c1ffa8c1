"""Probe: stage-1 fusion rules and pixel-shuffle factors on PolyU, on kept fit runs (references for measuring only).

    python experiments/fusion_probe.py Canon80D NikonD800 Canon600D     # runs/real_cameras/pairs/CAMERA
    python experiments/fusion_probe.py Sony Canon5D2

For 8 crops per camera (every k-th): PSNR after the guided filter of Bayes fusion (eq. 9) and of local fusion
(training.local_fusion, 5×5 window; the levers table's rows came from an earlier 3×3 version) with σ² from CNNest,
from the photos' noise level function, or from the truth; at pixel-shuffle ×4 (as trained) and ×2. Also prints the
mean noise σ each source reads against the true one.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from denoise_cli.evaluation import metrics
from denoise_cli.io import list_images, read_named, to_channels
from denoise_cli.models.cholesky import covariance
from denoise_cli.training.fit import score_levels
from denoise_cli.training.fit_run import FitRun
from denoise_cli.training.guided_filter import guided_filter
from denoise_cli.training.likelihood import bayes_fusion
from denoise_cli.training.local_fusion import local_fusion
from denoise_cli.training.pixel_shuffle import bayer_groups, pad_to_multiple, pd_down, pd_up

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "real-pairs" / "PolyU"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of a (clipped to [0,1]) against the reference b, on the 0–1 scale."""
    return metrics.psnr(b, np.clip(a, 0, 1), data_range=1.0)


def tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def diag(cov: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(cov, dim1=-2, dim2=-1).permute(0, 3, 1, 2)


def probe(cam: str) -> None:
    fr = FitRun(ROOT / "runs" / "real_cameras" / "pairs" / cam)
    st = fr.stage1(torch.device("cpu"))
    levels = score_levels([to_channels(read_named(f).pixels, 3) for f in list_images(fr.noisy_dir)], "real")
    names = sorted(p.name for p in (DATA / "noisy").iterdir() if p.name.startswith(cam))
    names = names[:: max(1, len(names) // 8)][:8]
    res: dict[str, list[float]] = {}
    sig: dict[str, list[float]] = {}
    for nm in names:
        y = to_channels(read_named(DATA / "noisy" / nm).pixels, 3)
        x = to_channels(read_named(DATA / "clean" / nm).pixels, 3)
        yt, xt = tensor(y), tensor(x)
        true_var = ((yt - xt) ** 2).mean((0, 2, 3), keepdim=True)
        out = {"noisy": y}
        for f in (4, 2):
            yp = pd_down(pad_to_multiple(yt, 4)[0], f)
            g = bayer_groups(1, f)
            with torch.no_grad():
                mu, l_mu = st.dbsn(yp)
                smu, sn = st.sigma_mu(l_mu, g), covariance(st.noise(yp, g))
            sources = {"cnnest": diag(sn), "levels": levels.variance(yp), "truth": true_var.expand_as(yp)}
            if f == 4:
                for k, v in sources.items():
                    sig.setdefault(k, []).append(float(v.mean()))

            def up(t: torch.Tensor) -> np.ndarray:
                return pd_up(t, f)[0].numpy().transpose(1, 2, 0)[: y.shape[0], : y.shape[1]]
            out[f"pd{f} bayes"] = up(bayes_fusion(yp, mu, smu, sn))
            for k, v in sources.items():
                out[f"pd{f} local ({k})"] = up(local_fusion(yp, mu, v)[0])
        for k, v in out.items():
            v = v if k == "noisy" else np.clip(guided_filter(v, y, 1, 0.01), 0, 1)
            res.setdefault(k, []).append(psnr(v, x))
    print(cam, "noise σ (of 255):", {k: round(float(np.mean(v)) ** 0.5 * 255, 2) for k, v in sig.items()}, flush=True)
    for k, v in sorted(res.items(), key=lambda kv: -np.mean(kv[1])):
        print(f"  {k:24s} {np.mean(v):.2f}", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    for camera in sys.argv[1:]:
        probe(camera)
