"""Run directories: config, periodic checkpoints, metrics log, resume and time budgets.

A run survives Ctrl-C (a checkpoint is written before exiting) and a hard kill (it resumes
from the last periodic checkpoint, losing at most one interval).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..errors import ConfigError
from ..io import write_bytes_atomic
from .parallel import is_main
from .run_config import CONFIG_VERSION, migrate, migrate_checkpoint


def parse_duration(text: str) -> float:
    """Seconds in '90', '90s', '30m', '1h30m', '2h'; ConfigError for anything else, zero included."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        seconds = float(text)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
        if not parts or "".join(a + b for a, b in parts) != text:
            raise ConfigError(f"bad duration {text!r}: use e.g. 90s, 30m, 1h30m")
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"duration {text!r}: must be longer than zero")
    return seconds


class Run:
    """A run directory: ``config.json``, ``checkpoint.safetensors`` + ``optimizer.pt``, ``metrics.jsonl``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.safetensors"

    @property
    def best(self) -> Path:
        """The weights with the best reference-free score so far (training.self_score)."""
        return self.path / "best.safetensors"

    def exists(self) -> bool:
        return self.checkpoint.exists()

    @contextmanager
    def removed_on_failure(self):
        """Remove the run folder again if it is new here and the work inside fails before its first checkpoint:
        a refused or broken start leaves nothing half-made behind."""
        new = not self.path.exists() and is_main()  # under torchrun the folder is rank 0's to remove
        try:
            yield self
        except BaseException:
            if new and not self.exists():
                shutil.rmtree(self.path, ignore_errors=True)
            raise

    def write_config(self, config: dict[str, Any]) -> None:
        """Save the run's settings, stamped with the current config version."""
        if not is_main():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.path / "config.json",
                           json.dumps({**config, "config_version": CONFIG_VERSION}, indent=2).encode())

    def read_config(self) -> dict[str, Any]:
        """The run's settings in the current version's terms (run_config.migrate)."""
        try:
            return migrate(json.loads((self.path / "config.json").read_text()))
        except FileNotFoundError:
            raise ConfigError(f"{self.path} is not a run folder (no config.json)") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{self.path / 'config.json'} is not valid JSON ({e})") from None

    def save(self, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer | None,
             step: int, elapsed: float, lr: float | None = None, progress: float | None = None,
             stopped: bool = False) -> None:
        """Write weights and optimizer state (none: weights only), the learning rate last used and the
        fraction of the budget reached; the weights file is replaced atomically last."""
        if not is_main():  # under torchrun rank 0 alone writes
            return
        tensors = _tensors(modules)
        if optimizer is not None:
            opt_tmp = self.path / "optimizer.pt.part"
            torch.save(optimizer.state_dict(), opt_tmp)
            opt_tmp.replace(self.path / "optimizer.pt")
        tmp = self.path / "checkpoint.part"
        meta = {"step": str(step), "elapsed": f"{elapsed:.3f}"}
        if lr is not None:
            meta["lr"] = repr(lr)
        if progress is not None:
            meta["progress"] = repr(progress)
        if stopped:
            meta["stopped"] = "1"
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(self.checkpoint)

    def save_best(self, modules: dict[str, torch.nn.Module], step: int, score: float) -> None:
        """Keep these weights as the best-scoring ones (replaced atomically)."""
        if not is_main():
            return
        tensors = _tensors(modules)
        tmp = self.path / "best.part"
        save_file(tensors, str(tmp), metadata={"step": str(step), "score": repr(score)})
        tmp.replace(self.best)

    def load_best(self, modules: dict[str, torch.nn.Module]) -> None:
        """Put the best-scoring weights into ``modules``."""
        tensors = load_file(str(self.best))
        _put(tensors, modules)

    def load(self, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer | None) -> tuple[int, float]:
        """Restore weights (and optimizer state when given); returns (step, elapsed seconds)."""
        meta = self.metadata()
        tensors = load_file(str(self.checkpoint))
        _put(tensors, modules)
        opt_path = self.path / "optimizer.pt"
        if optimizer is not None and opt_path.exists():
            optimizer.load_state_dict(regroup(torch.load(opt_path, weights_only=True), optimizer))
        return int(meta.get("step", 0)), float(meta.get("elapsed", 0.0))

    def metadata(self) -> dict[str, str]:
        """The checkpoint's metadata: step, elapsed training seconds, the last lr and the share of the budget reached
        (older checkpoints completed by run_config.migrate_checkpoint)."""
        from safetensors import safe_open

        with safe_open(str(self.checkpoint), framework="pt") as f:
            meta = f.metadata() or {}
        return meta if "lr" in meta and "progress" in meta else migrate_checkpoint(meta, self.records())

    def last_lr(self) -> float | None:
        """The learning rate the run last trained at (None when nothing recorded it)."""
        lr = self.metadata().get("lr")
        return float(lr) if lr is not None else None

    def reached_progress(self) -> float:
        """How far through its budget the run had got when last saved (0–1)."""
        return float(self.metadata()["progress"])

    def finished(self) -> bool:
        """The run reached the end of its budget, or stopped because its score had stopped improving."""
        meta = self.metadata()
        return meta.get("stopped") == "1" or float(meta["progress"]) >= 1

    def records(self) -> list[dict[str, Any]]:
        """The metrics log, oldest first (empty before the first entry)."""
        log = self.path / "metrics.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def log(self, record: dict[str, Any]) -> None:
        if not is_main():
            return
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


def _tensors(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """The modules' weights as one flat dict, each name prefixed with its module's."""
    return {f"{name}.{k}": v.detach().cpu().contiguous() for name, m in modules.items() for k, v in m.state_dict().items()}


def _put(tensors: dict[str, torch.Tensor], modules: dict[str, torch.nn.Module]) -> None:
    """Load a flat dict written by _tensors back into the modules."""
    for name, m in modules.items():
        prefix = f"{name}."
        m.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})


class Budget:
    """Stops training after ``iterations`` steps or ``seconds`` of training time, whichever first."""

    def __init__(self, iterations: int | None, seconds: float | None, step: int = 0, elapsed: float = 0.0):
        if iterations is None and seconds is None:
            raise ConfigError("a budget needs a number of steps, a time, or both")
        if iterations is not None and iterations < 1:
            raise ConfigError(f"a budget of {iterations} steps: expected at least 1")
        if seconds is not None and not seconds > 0:
            raise ConfigError("a time budget must be longer than zero")
        self.iterations, self.seconds = iterations, seconds
        self.step, self._before = step, elapsed
        self._start = time.monotonic()
        self.stopped = False  # set when the reference-free score stopped improving (training.loop)
        self._agreed: float | None = None  # rank 0's progress, under torchrun (agree)

    def resume(self, step: int, elapsed: float) -> None:
        """Continue counting from a checkpoint's step and training time."""
        self.step, self._before = step, elapsed
        self._start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return self._before + time.monotonic() - self._start

    def agree(self, progress: float, stopped: bool) -> None:
        """Take rank 0's progress and stop decision until the next call (training.loop, under torchrun), so that
        every rank follows one clock."""
        self._agreed, self.stopped = progress, stopped

    @property
    def progress(self) -> float:
        """Fraction done in [0, 1], by whichever limit is closer (rank 0's under torchrun)."""
        return self._agreed if self._agreed is not None else self.own_progress()

    def own_progress(self) -> float:
        """This process's own progress, by its own clock and steps."""
        fractions = []
        if self.iterations:
            fractions.append(self.step / self.iterations)
        if self.seconds:
            fractions.append(self.elapsed / self.seconds)
        return min(1.0, max(fractions))

    def done(self) -> bool:
        return self.stopped or self.progress >= 1.0


def regroup(saved: dict, optimizer: torch.optim.Optimizer) -> dict:
    """An optimizer state saved with another split of the same ordered parameters into groups (fit runs
    saved before CNNest had its own group) laid out as ``optimizer``'s groups: moments kept per parameter,
    group settings taken from ``optimizer``."""
    if len(saved["param_groups"]) == len(optimizer.param_groups):
        return saved
    groups, start = [], 0
    for g in optimizer.param_groups:
        n = len(g["params"])
        groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": list(range(start, start + n))})
        start += n
    return {**saved, "param_groups": groups}
