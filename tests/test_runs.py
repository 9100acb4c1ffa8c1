import pytest
import torch

from denoise_cli.runs import Budget, Run, parse_duration
from denoise_cli.training import cosine_lr, train_loop


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
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    run = Run(tmp_path / "run")
    run.write_config({"x": 1})
    x, y = torch.randn(64, 3), torch.randn(64, 1)

    def loss(_: int) -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(x), y)

    train_loop(run, {"m": model}, opt, loss, Budget(5, None), 0.1, show_progress=False)
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
        train_loop(run, {"m": model}, opt, loss, Budget(100, None), 0.1, show_progress=False)
    assert run.load({"m": torch.nn.Linear(2, 1)}, None)[0] == 3
