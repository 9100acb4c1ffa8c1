import pytest
import torch

from denoise_cli.training.runs import Budget, Run, parse_duration
from denoise_cli.training.loop import REWARM_STEPS, cosine_lr, rewarm_lr, train_loop
from conftest import toy_training


def test_parse_duration():
    assert parse_duration("90") == 90
    assert parse_duration("30m") == 1800
    assert parse_duration("1h30m") == 5400
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_budget_by_iterations():
    b = Budget(10, None)
    assert not b.done()
    b.step = 10
    assert b.done() and b.progress == 1.0
    with pytest.raises(ValueError):
        Budget(None, None)


def test_cosine_lr_endpoints():
    assert cosine_lr(1.0, 0.0) == pytest.approx(1.0)
    assert cosine_lr(1.0, 1.0) == pytest.approx(0.01)


def test_training_resumes_where_it_stopped(tmp_path):
    run, model, opt, x, y = toy_training(tmp_path)

    def loss(_: int) -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(x), y)

    train_loop(run, {"m": model}, opt, loss, Budget(5, None), 0.1)
    weights = model.weight.detach().clone()
    fresh = torch.nn.Linear(3, 1)
    opt2 = torch.optim.Adam(fresh.parameters(), lr=0.1)
    step, _ = run.load({"m": fresh}, opt2)
    assert step == 5 and torch.equal(fresh.weight, weights)
    assert opt2.state_dict()["state"][0]["step"] == 5


def test_interrupt_saves_a_checkpoint(tmp_path):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = Run(tmp_path / "r")
    run.write_config({})

    def loss(step: int) -> torch.Tensor:
        if step == 3:
            raise KeyboardInterrupt
        return model(torch.ones(1, 2)).sum()

    with pytest.raises(KeyboardInterrupt):
        train_loop(run, {"m": model}, opt, loss, Budget(100, None), 0.1)
    assert run.load({"m": torch.nn.Linear(2, 1)}, None)[0] == 3


def _logged_lrs(run: Run) -> list[float]:
    return [r["lr"] for r in run.records() if "lr" in r]


def _linear_run(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    run = Run(tmp_path / "run")
    run.write_config({})
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    return run, model, opt, lambda _: torch.nn.functional.mse_loss(model(x), y)


def test_rewarm_lr_ramps_geometrically_and_never_overshoots():
    assert rewarm_lr(None, 1e-3, 0) == 1e-3
    assert rewarm_lr(1e-3, 5e-4, 0) == 5e-4  # schedule below the saved lr: follow it
    ramp = [rewarm_lr(1e-5, 4e-4, k, steps=4) for k in range(6)]
    assert ramp[0] == pytest.approx(1e-5 * 40 ** 0.25)
    assert all(a < b for a, b in zip(ramp[:3], ramp[1:4]))
    assert ramp[3:] == [4e-4, 4e-4, 4e-4]


def test_extending_a_finished_run_ramps_the_lr_instead_of_jumping(tmp_path):
    run, model, opt, loss = _linear_run(tmp_path)
    train_loop(run, {"m": model}, opt, loss, Budget(100, None), 0.1, log_every=1)
    end_lr = float(run.metadata()["lr"])
    assert end_lr == pytest.approx(_logged_lrs(run)[-1]) and end_lr < 0.002
    budget = Budget(2 * REWARM_STEPS, None)
    budget.resume(*run.load({"m": model}, opt))
    train_loop(run, {"m": model}, opt, loss, budget, 0.1, log_every=1)
    after = _logged_lrs(run)[100:]
    assert after[0] < 2 * end_lr  # a cold jump would start at cosine_lr(0.1, 0.25) ≈ 0.085
    half = REWARM_STEPS // 2
    assert all(a < b for a, b in zip(after[:half], after[1:half + 1]))
    assert after[REWARM_STEPS] == pytest.approx(cosine_lr(0.1, (100 + REWARM_STEPS) / (2 * REWARM_STEPS)))


def test_an_interrupted_run_resumes_on_the_same_schedule(tmp_path):
    run, model, opt, loss = _linear_run(tmp_path)

    def interrupted(step: int) -> torch.Tensor:
        if step == 30:
            raise KeyboardInterrupt
        return loss(step)

    with pytest.raises(KeyboardInterrupt):
        train_loop(run, {"m": model}, opt, interrupted, Budget(60, None), 0.1, log_every=1)
    budget = Budget(60, None)
    budget.resume(*run.load({"m": model}, opt))
    train_loop(run, {"m": model}, opt, loss, budget, 0.1, log_every=1)
    assert _logged_lrs(run) == pytest.approx([cosine_lr(0.1, k / 60) for k in range(60)])


def test_checkpoints_without_a_recorded_lr_fall_back_to_the_metrics_log(tmp_path):
    run, model, opt, loss = _linear_run(tmp_path)
    train_loop(run, {"m": model}, opt, loss, Budget(100, None), 0.1, log_every=10)
    logged = _logged_lrs(run)[-1]
    run.save({"m": model}, opt, 100, 1.0)  # as runs saved before the lr was recorded
    from safetensors import safe_open

    with safe_open(str(run.checkpoint), framework="pt") as f:
        assert "lr" not in f.metadata()
    assert run.last_lr() == logged
    budget = Budget(2 * REWARM_STEPS, None)
    budget.resume(*run.load({"m": model}, opt))
    train_loop(run, {"m": model}, opt, loss, budget, 0.1, log_every=1)
    assert _logged_lrs(run)[10] < 2 * logged  # ramped, not a jump to cosine_lr(0.1, 0.25)


def test_a_parameter_groups_lr_mult_scales_its_lr_and_old_single_group_states_still_load(tmp_path):
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 1), torch.nn.Linear(1, 1)
    run = Run(tmp_path / "run")
    run.write_config({})
    x = torch.randn(16, 3)

    def loss(_: int) -> torch.Tensor:
        return b(a(x)).pow(2).mean()

    one = torch.optim.Adam([*a.parameters(), *b.parameters()], lr=0.1)  # how fit grouped before noise_lr
    train_loop(run, {"a": a, "b": b}, one, loss, Budget(3, None), 0.1)
    two = torch.optim.Adam([{"params": a.parameters()}, {"params": b.parameters(), "lr_mult": 3.0}], lr=0.1)
    run.load({"a": a, "b": b}, two)
    assert [len(g["params"]) for g in two.param_groups] == [2, 2]
    assert two.state_dict()["state"][3]["step"] == 3  # b's bias kept its Adam moments
    train_loop(run, {"a": a, "b": b}, two, loss, Budget(4, None), 0.1)
    assert two.param_groups[1]["lr"] == pytest.approx(3 * two.param_groups[0]["lr"])
