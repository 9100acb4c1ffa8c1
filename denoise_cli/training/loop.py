"""The shared optimisation loop: cosine learning rate over the budget, periodic checkpoints,
progress (with the loss) to the caller's reporter, and a checkpoint on Ctrl-C before the interrupt propagates.

Resuming with the same budget continues the same schedule. Resuming a finished run with a larger
budget is a warm restart: the cosine of the new budget asks for a far higher lr than the run ended
on, and jumping there at once against Adam's small, slowly adapting second moments makes the loss
blow up. So the lr ramps geometrically from where the run stopped to the schedule over REWARM_STEPS steps (a
no-op when the two already agree)."""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
from ..progress import SILENT, Reporter
from . import parallel
from .runs import Budget, Run
from .self_score import SCORE_EVERY, ScoreLog


def cosine_lr(lr0: float, progress: float, floor: float = 0.01) -> float:
    """Cosine decay from lr0 to floor·lr0 as progress goes 0 → 1."""
    return lr0 * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


REWARM_STEPS = 200


def rewarm_lr(saved: float | None, scheduled: float, steps_since_resume: int, steps: int = REWARM_STEPS) -> float:
    """The lr for a resumed run: a geometric ramp from ``saved`` up to ``scheduled`` over ``steps`` steps,
    never above the schedule; ``scheduled`` itself when nothing was saved or the schedule is lower."""
    if saved is None or saved <= 0 or scheduled <= saved or steps_since_resume >= steps:
        return scheduled
    return saved * (scheduled / saved) ** ((steps_since_resume + 1) / steps)


def train_loop(run: Run, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
               step_loss: Callable[[int], torch.Tensor], budget: Budget, lr0: float, *,
               checkpoint_every: float = 120.0, log_every: int = 50, reporter: Reporter = SILENT,
               description: str = "training", lr_scale: Callable[[float], float] = lambda _: 1.0,
               start_lr: float | None = None, score: Callable[[], float] | None = None,
               scores: ScoreLog | None = None,
               on_score: Callable[[int, float, dict[str, torch.nn.Module]], None] | None = None,
               score_start: bool = False) -> None:
    """Run optimisation steps until the budget is spent; resumable through ``run``.

    With ``score`` (a reference-free estimate of the output's PSNR, higher is better), the model is scored every
    SCORE_EVERY of the budget and at its end; ``scores`` decides from which point scores count. The weights with the
    best counted score are kept (``run.save_best``) and put back in ``modules`` at the end, and training stops
    early once the score has stopped improving; ``on_score(step, score, modules)`` sees every score (benchmarks keep
    the weights there). ``score_start`` also scores the weights a new run starts from (a fine-tune's), which then
    compete for best. Progress goes to ``reporter`` as the task "training" (rank 0 only).

    The learning rate follows a cosine from lr0 over the budget, times ``lr_scale(progress)`` and a
    parameter group's own ``lr_mult`` where it sets one; a
    resumed run ramps to it from the lr it stopped at, and a fresh one from ``start_lr`` when given
    (a fine-tune of trained weights, whose Adam moments start empty; see ``rewarm_lr``)."""
    for m in modules.values():
        m.train()
    if score is not None and scores is None:
        scores = ScoreLog(run.records())
    if score is not None and run.exists() and run.metadata().get("stopped") == "1":
        budget.stopped = True  # a run that stopped on its score has finished, whatever budget it is given now
    state = _State(run, modules, optimizer, budget, score, scores, on_score, start_lr, reporter if parallel.is_main() else SILENT)
    state.reporter.start("training", 1.0, description)
    state.reporter.update("training", completed=budget.progress)
    try:
        if score is not None and score_start and budget.step == 0 and not scores.points and parallel.is_main():
            state.shown = _score_point(run, modules, budget, score, scores, on_score, start=True)
        while not state.finished():
            state.lr = rewarm_lr(state.saved_lr, cosine_lr(lr0, budget.progress) * lr_scale(budget.progress),
                                 budget.step - state.resumed_at)
            state.step(step_loss, log_every, checkpoint_every)
    except KeyboardInterrupt:
        run.save(modules, optimizer, budget.step, budget.elapsed, state.lr, budget.progress)
        raise
    finally:
        state.reporter.done("training")
    run.log({"step": budget.step, "loss": state.smoothed, "elapsed": round(budget.elapsed, 1), "final": True,
             **({"stopped_early": True} if budget.stopped else {})})
    run.save(modules, optimizer, budget.step, budget.elapsed, state.lr, budget.progress, stopped=budget.stopped)
    if scores is not None and parallel.is_main() and run.best.exists():
        run.load_best(modules)
    if scores is not None and state.ranks is not None:
        state.ranks.share_modules(modules)  # rank 0 kept the best weights: every rank goes on with them


class _State:
    """One training run's moving parts between steps: the lr, the smoothed loss, the next score, the last save."""

    def __init__(self, run: Run, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer, budget: Budget,
                 score, scores: ScoreLog | None, on_score, start_lr: float | None, reporter: Reporter) -> None:
        self.run, self.modules, self.optimizer, self.budget = run, modules, optimizer, budget
        self.score, self.scores, self.on_score, self.reporter = score, scores, on_score, reporter
        self.resumed_at = budget.step
        self.saved_lr = run.last_lr() if self.resumed_at and run.exists() else start_lr
        self.lr = self.saved_lr
        self.smoothed: float | None = None
        self.shown = ""
        self.next_score = _next_score(budget.progress)
        self.last_save = time.monotonic()
        self.ranks = parallel.group()

    def finished(self) -> bool:
        if self.ranks is not None:  # one clock for all ranks: rank 0's
            progress, stopped = self.ranks.from_rank0(self.budget.own_progress(), float(self.budget.stopped))
            self.budget.agree(progress, bool(stopped))
        return self.budget.done()

    def step(self, step_loss: Callable[[int], torch.Tensor], log_every: int, checkpoint_every: float) -> None:
        """One optimisation step, then whatever is due: a score, a log line, a checkpoint."""
        budget = self.budget
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * group.get("lr_mult", 1.0)
        loss = step_loss(budget.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        budget.step += 1
        value = float(loss.detach())
        self.smoothed = value if self.smoothed is None else 0.98 * self.smoothed + 0.02 * value
        if self.score is not None and parallel.is_main() and budget.progress >= min(self.next_score, 1.0) - 1e-9:
            self.shown = _score_point(self.run, self.modules, budget, self.score, self.scores, self.on_score)
            self.next_score = _next_score(budget.progress)
        self.reporter.update("training", completed=budget.progress,
                             info=f"step {budget.step} loss {self.smoothed:.4g}{self.shown}")
        if budget.step % log_every == 0:
            self.run.log({"step": budget.step, "loss": self.smoothed, "lr": self.lr,
                          "elapsed": round(budget.elapsed, 1)})
        if time.monotonic() - self.last_save > checkpoint_every:
            self.run.save(self.modules, self.optimizer, budget.step, budget.elapsed, self.lr, budget.progress)
            self.last_save = time.monotonic()


def _next_score(progress: float) -> float:
    """The share of the budget at which the next score is due: the next multiple of SCORE_EVERY."""
    return (math.floor(progress / SCORE_EVERY + 1e-9) + 1) * SCORE_EVERY


def _score_point(run: Run, modules: dict[str, torch.nn.Module], budget: Budget, score: Callable[[], float],
                 scores: ScoreLog, on_score: Callable[[int, float, dict[str, torch.nn.Module]], None] | None,
                 start: bool = False) -> str:
    """Score the model now, keep its weights when they are the best so far, stop the budget once the score is
    stale; returns the text for the progress bar."""
    for m in modules.values():
        m.eval()
    value = score()
    for m in modules.values():
        m.train()
    progress = 0.0 if start else budget.progress
    best = scores.add(progress, value, start=start)
    run.log({"step": budget.step, "progress": round(progress, 4), "score": round(value, 4),
             "elapsed": round(budget.elapsed, 1), **({"start": True} if start else {}), **({"best": True} if best else {})})
    if best:
        run.save_best(modules, budget.step, value)
    if on_score is not None:
        on_score(budget.step, value, modules)
    if scores.stale():
        budget.stopped = True
    return f" score {value:.2f} dB"
