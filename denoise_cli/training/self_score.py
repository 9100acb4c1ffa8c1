"""A reference-free score of a denoiser on held-out noisy crops: Stein's unbiased risk estimate (SURE) of its mean
squared error under an estimate of the noise, reported as an estimated PSNR (dB).

For y = x + n with n ~ N(0, Σ), E‖f(y) − x‖² = E[‖f(y) − y‖² − tr Σ + 2 tr(Σ ∂f/∂y)] (Stein 1981; Eldar 2009 for a
general Σ), so a denoiser can be scored on noisy photos alone. Stage 1's Bayes fusion has the divergence in closed
form: D-BSN's μ and Σμ do not see the pixel itself, so ∂x̂/∂y = (Σμ+Σn)⁻¹Σμ. For any other network the trace is
estimated with one Monte-Carlo probe drawn from the noise model: tr(Σ J) ≈ bᵀ(f(y + εb) − f(y))/ε, b ~ N(0, Σ)
(Ramani et al. 2008). The crops are held out of training, so the network cannot have learned their noise.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from .likelihood import bayes_fusion

#: Scores are taken this often, as a fraction of the training budget.
SCORE_EVERY = 0.05
#: A run whose best score rose by more than this over its last fifth was still learning when its budget ran out.
STILL_IMPROVING_DB = 0.1


def psnr_of_mse(mse: float) -> float:
    """The PSNR (dB, signal range 1) that a mean squared error corresponds to; capped for a non-positive estimate."""
    return 10 * math.log10(1 / max(mse, 1e-10))


def holdout(images: list[np.ndarray], rows: int, align: int = 1, share: float = 0.1, max_pixels: float = 3e5
            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split the photos into training images and held-out bands: the bottom ``rows`` rows of photos spread evenly
    over the set, each photo tall enough to keep at least as many rows for training, until the bands hold ``share``
    of all pixels or ``max_pixels`` (what one score costs). A band wider than 4×rows is scored on its central part
    (all of it stays out of training). When no photo is tall enough, the last photo is held out whole if there are
    several, else the one photo is scored although it is also trained on (the score then favours overfitting,
    which the learning-rate schedule keeps small)."""
    rows -= rows % align
    total = sum(im.shape[0] * im.shape[1] for im in images)
    tall = [i for i, im in enumerate(images) if im.shape[0] >= 2 * rows]
    budget = min(share * total, max_pixels)
    per_band = [min(images[i].shape[1], 4 * rows) * rows for i in tall]
    count = 0
    while count < len(tall) and (count == 0 or sum(per_band[:count]) + per_band[count] <= budget):
        count += 1
    chosen = set(tall[:: max(1, len(tall) // count)][:count]) if count else set()
    train, held = [], []
    for i, im in enumerate(images):
        if i not in chosen:
            train.append(im)
            continue
        top = (im.shape[0] - rows) // align * align
        width = min(im.shape[1], 4 * rows)
        x0 = (im.shape[1] - width) // 2 // align * align
        train.append(im[:top])
        held.append(np.ascontiguousarray(im[top : top + rows, x0 : x0 + width]))
    if not held and len(images) > 1:
        return train[:-1], [images[-1]]
    if not held:
        return train, [images[0]]
    return train, held


def sure_fusion(y: torch.Tensor, mu: torch.Tensor, sigma_mu: torch.Tensor,
                noise_cov: Callable[[torch.Tensor], torch.Tensor], gamma: float = 1.0,
                truth: torch.Tensor | None = None) -> torch.Tensor:
    """SURE of Bayes fusion x̂ = (Σμ+γΣn)⁻¹(Σμ y + γΣn μ) per pixel, summed over channels: ‖x̂ − y‖² − tr Σn +
    2 tr(Σn ∂x̂/∂y). μ and Σμ come from the blind spot and do not see the pixel; Σn = ``noise_cov(y)`` does (CNNest
    reads the noisy value), so the divergence is taken by autograd through it, one backward pass per channel
    (exact: CNNest is pixel-wise). The noise the risk is taken under is Σn itself unless ``truth`` (N,H,W,C,C) is
    given. Returns (N,H,W)."""
    y = y.detach().requires_grad_(True)
    mu, sigma_mu = mu.detach(), sigma_mu.detach()
    with torch.enable_grad():
        sigma_n = noise_cov(y)
        x = bayes_fusion(y, mu, sigma_mu, gamma * sigma_n)
        c = y.shape[1]
        rows = [torch.autograd.grad(x[:, k].sum(), y, retain_graph=k < c - 1)[0] for k in range(c)]
    jac = torch.stack(rows, 1).permute(0, 3, 4, 1, 2)  # (N,H,W,out,in): ∂x̂_out/∂y_in
    sigma_n = sigma_n.detach() if truth is None else truth
    residual = ((x.detach() - y.detach()) ** 2).sum(1)
    trace_n = torch.diagonal(sigma_n, dim1=-2, dim2=-1).sum(-1)
    trace_nj = (sigma_n * jac.transpose(-1, -2)).sum((-1, -2))  # tr(Σn J) = Σ Σn ∘ Jᵀ
    return residual - trace_n + 2 * trace_nj


@torch.no_grad()
def mc_sure(f: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, noise: torch.Tensor,
            eps: float = 0.1) -> float:
    """Monte-Carlo SURE of f at y (N,C,H,W), per pixel and channel, from one probe ``noise`` drawn from the noise
    model at y (same shape): ‖f(y) − y‖² − ‖b‖² + 2 bᵀ(f(y + εb) − f(y))/ε, averaged."""
    fy = f(y)
    div = (noise * (f(y + eps * noise) - fy)).sum() / eps
    n = y.numel()
    return float((((fy - y) ** 2).sum() - (noise**2).sum() + 2 * div) / n)


class ScoreLog:
    """The scores of one run as training goes (kept in metrics.jsonl): the best so far, when it was reached, and
    whether the run was still improving at the end. The score of a trained start (a fine-tune's initial weights)
    counts like a late one, so a run never ends on weights it scored below where it began."""

    def __init__(self, records: list[dict] | None = None, *, counts_from: float = 0.0, patience: int = 4) -> None:
        self.counts_from, self.patience = counts_from, patience
        self.points: list[tuple[float, float]] = []  # (progress, score)
        self._counts: list[bool] = []
        for r in records or []:
            if "score" in r:
                self._record(r["progress"], r["score"], bool(r.get("start")))

    def _record(self, progress: float, score: float, start: bool) -> None:
        self.points.append((progress, score))
        self._counts.append(start or progress >= self.counts_from)

    @property
    def counted(self) -> list[tuple[float, float]]:
        """The scores that take part in keeping the best and stopping (a trained start's, and those from
        ``counts_from`` of the budget on)."""
        return [p for p, c in zip(self.points, self._counts) if c]

    @property
    def best(self) -> float | None:
        counted = self.counted
        return max(s for _, s in counted) if counted else None

    def add(self, progress: float, score: float, *, start: bool = False) -> bool:
        """Record a score (``start``: of the trained weights a run starts from); True when it is the best counted
        one so far (the weights are then worth keeping)."""
        best = self.best
        self._record(progress, score, start)
        return self._counts[-1] and (best is None or score > best)

    def stale(self) -> bool:
        """The last ``patience`` counted scores brought nothing above the best before them: time to stop."""
        counted = self.counted
        if len(counted) <= self.patience:
            return False
        before = max(s for _, s in counted[: -self.patience])
        return max(s for _, s in counted[-self.patience :]) <= before

    def still_improving(self) -> bool:
        """The best score rose by more than STILL_IMPROVING_DB over the last fifth of the run."""
        if len(self.points) < 2:
            return False
        end = self.points[-1][0]
        earlier = [s for p, s in self.points if p <= end - 0.2 and p >= self.counts_from]
        if not earlier:
            earlier = [s for p, s in self.points if p <= end - 0.2]
        return bool(earlier) and max(s for _, s in self.points) - max(earlier) > STILL_IMPROVING_DB


def length_note(records: list[dict]) -> str | None:
    """What a finished run's scores say about its length, in one sentence (None when there is nothing to say): it
    stopped early because the score had stopped improving, or the score was still improving when the budget ran
    out."""
    final = next((r for r in reversed(records) if r.get("final")), None)
    log = ScoreLog(records)
    if final is None or not log.points:
        return None
    best = max(log.points, key=lambda p: p[1])
    if final.get("stopped_early"):
        return (f"stopped early after {final['step']} steps: the score had stopped improving; kept the weights that "
                f"scored best ({best[1]:.2f} dB estimated)")
    if log.still_improving():
        return (f"the score was still improving when the time ran out ({best[1]:.2f} dB estimated, "
                f"+{best[1] - max(s for p, s in log.points if p <= log.points[-1][0] - 0.2):.2f} dB over the last fifth): "
                "give it more time")
    return None


def against_start(records: list[dict]) -> str | None:
    """A fine-tune's verdict in words, from its own scores: whether the kept weights are expected to beat the weights
    it started from (the shipped default), by how much on the held-out photos' estimate; None without a scored
    start."""
    start = next((r["score"] for r in records if r.get("start") and "score" in r), None)
    scores = [r["score"] for r in records if "score" in r and not r.get("start")]
    if start is None or not scores:
        return None
    gain = max(scores) - start
    if gain > 0.05:
        return f"expected to denoise these photos better than the default it started from (+{gain:.2f} dB estimated)"
    return ("not expected to beat the default it started from on these photos (it scored no higher), so the default "
            "was kept")
