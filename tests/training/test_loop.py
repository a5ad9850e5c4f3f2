"""fit_trajectories: learning, validation-based selection, exact resumption, interrupts, bad input."""

import os
import signal

import pytest
import torch

from physml.models.neural_ode import NeuralODE
from physml.nn.mlp import MLP
from physml.training import (
    Trainer,
    TrainingConfig,
    TrajectorySet,
    evaluate,
    fit_trajectories,
    load_checkpoint,
    predict,
)

from .problems import leads_model, lotka_volterra


@pytest.fixture(scope="module")
def splits():
    return lotka_volterra(4, seed=0), lotka_volterra(2, seed=1), lotka_volterra(2, seed=2)


def config(**changes):
    settings = dict(epochs=6, batch_size=2, learning_rate=5e-3, restart_probability=0.9, restart_decay=0.8,
                    restart_decay_every=2, validate_every=1, checkpoint_every=1, seed=3, progress=False,
                    restore_best=False)
    return TrainingConfig(**(settings | changes))


def assert_same_state(first, second):
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_linear_decay_rate_is_learned():
    times = torch.linspace(0, 2, 9, dtype=torch.float64)
    amplitudes = torch.tensor([1.0, 2.0], dtype=torch.float64).view(1, 2, 1, 1)
    states = torch.exp(-0.7 * times).view(1, 1, 9, 1) * amplitudes
    data = TrajectorySet(states, times, ("u",), (0,))
    layer = torch.nn.Linear(1, 1, bias=False, dtype=torch.float64)
    torch.nn.init.zeros_(layer.weight)
    model = NeuralODE(layer, method="rk4", step_size=0.05)
    settings = TrainingConfig(epochs=150, learning_rate=0.05, progress=False)
    result = fit_trajectories(model, data, data, settings)
    assert abs(layer.weight.item() + 0.7) < 1e-3
    assert result.best_validation_mse < 1e-7 and result.epochs_completed == 150


def test_leads_training_reduces_the_test_error(splits):
    train, validation, test = splits
    model = leads_model()
    before = evaluate(model, test)["mse"]
    result = fit_trajectories(model, train, validation, config(epochs=40, validate_every=10))
    after = evaluate(model, test)
    assert after["mse"] < 0.5 * before
    assert len(after["mse_per_environment"]) == 3 and after["mse_per_sample"].shape == (3, 2)
    assert [record["epoch"] for record in result.history] == [10, 20, 30, 40]
    assert result.history[0]["restart_probability"] == pytest.approx(0.9 * 0.8**10)  # 2 iterations per epoch


def test_best_validation_state_is_restored(splits):
    train, validation, _ = splits
    model = leads_model()
    result = fit_trajectories(model, train, validation, config(epochs=8, restore_best=True))
    best = min(result.history, key=lambda record: record["validation_mse"])
    assert result.best_epoch == best["epoch"] and result.best_validation_mse == best["validation_mse"]
    assert_same_state(model.state_dict(), result.best_state)
    prediction = predict(model, validation)
    mse = float((prediction - validation.states).square().mean())
    assert mse == pytest.approx(result.best_validation_mse, rel=1e-12)


def record_norm(trainer, record):
    # a numpy scalar, as a study's callback might add: checkpoints must still load with weights_only
    weights = torch.cat([parameter.detach().reshape(-1) for parameter in trainer.model.shared.parameters()])
    record["shared_norm"] = weights.norm().numpy()


def test_resume_after_interrupt_continues_exactly(splits, tmp_path):
    train, validation, _ = splits
    uninterrupted = leads_model()
    reference = fit_trajectories(uninterrupted, train, validation, config(), callback=record_norm)

    def interrupt_at_epoch_3(trainer, record):
        record_norm(trainer, record)
        if record["epoch"] == 3:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would

    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt, match="after epoch 3"):
        fit_trajectories(leads_model(), train, validation, config(), checkpoint_path=path,
                         callback=interrupt_at_epoch_3)
    assert load_checkpoint(path)["epoch"] == 3
    resumed_model = leads_model(seed=99)  # other initial weights: everything must come from the checkpoint
    resumed = fit_trajectories(resumed_model, train, validation, config(), checkpoint_path=path,
                               callback=record_norm)
    assert_same_state(resumed_model.state_dict(), uninterrupted.state_dict())

    def without_timing(history):
        return [{key: value for key, value in record.items() if key != "elapsed_s"} for record in history]

    assert without_timing(resumed.history) == without_timing(reference.history)
    assert isinstance(resumed.history[0]["shared_norm"], float)
    assert resumed.iterations == reference.iterations == 12
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_extending_a_finished_run_equals_a_longer_run(splits, tmp_path):
    train, validation, _ = splits
    longer = leads_model()
    fit_trajectories(longer, train, validation, config(epochs=5))
    path = tmp_path / "run.pt"
    fit_trajectories(leads_model(), train, validation, config(epochs=2), checkpoint_path=path)
    extended = leads_model()
    result = fit_trajectories(extended, train, validation, config(epochs=5), checkpoint_path=path)
    assert result.epochs_completed == 5
    assert_same_state(extended.state_dict(), longer.state_dict())


def test_resuming_with_other_settings_is_refused(splits, tmp_path):
    train, validation, _ = splits
    path = tmp_path / "run.pt"
    fit_trajectories(leads_model(), train, validation, config(epochs=1), checkpoint_path=path)
    with pytest.raises(ValueError, match="learning_rate: 0.005 -> 0.01"):
        fit_trajectories(leads_model(), train, validation, config(epochs=2, learning_rate=1e-2),
                         checkpoint_path=path)


def test_failed_checkpoint_write_keeps_the_previous_one(splits, tmp_path, monkeypatch):
    train, validation, _ = splits
    path = tmp_path / "run.pt"
    fit_trajectories(leads_model(), train, validation, config(epochs=1), checkpoint_path=path)

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        fit_trajectories(leads_model(), train, validation, config(epochs=2), checkpoint_path=path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["run.pt"]


def test_time_budget_stops_with_a_checkpoint(splits, tmp_path):
    train, validation, _ = splits
    result = fit_trajectories(leads_model(), train, validation, config(epochs=1000, max_time=1e-9),
                              checkpoint_path=tmp_path / "run.pt")
    assert result.stopped == "max_time" and result.epochs_completed == 1
    assert load_checkpoint(tmp_path / "run.pt")["epoch"] == 1
    assert result.history[-1]["epoch"] == 1  # the last epoch is validated


def test_per_prefix_learning_rates_and_frozen_parameters(splits):
    train, validation, _ = splits
    model = leads_model()
    model.shared.requires_grad_(False)
    trainer = Trainer(model, train, validation, config(learning_rates={"environment_models": 1e-2}))
    groups = {group["name"]: group for group in trainer.optimizer.param_groups}
    assert set(groups) == {"environment_models"} and groups["environment_models"]["lr"] == 1e-2
    before = [parameter.clone() for parameter in model.shared.parameters()]
    trainer.fit()
    assert all(torch.equal(a, b) for a, b in zip(before, model.shared.parameters(), strict=True))


def test_bad_input_is_named(splits):
    train, validation, _ = splits
    with pytest.raises(ValueError, match=r"environments \[0, 1\] in the same order"):
        Trainer(leads_model(n_environments=2), train.select_environments([0, 1]),
                validation.select_environments([1, 0]), config())
    with pytest.raises(ValueError, match=r"missing from validation: \[2\]"):
        Trainer(leads_model(), train, lotka_volterra(2, seed=1, environments=(0, 1)), config())
    renamed = TrajectorySet(train.states, train.times, ("prey", "predators"), train.environments)
    message = r"\['prey', 'predators'\] do not match the model's state \['x', 'y'\]"
    with pytest.raises(ValueError, match=message):
        Trainer(leads_model(), renamed, None, config())
    with pytest.raises(ValueError, match="3 environments but train holds 2"):
        Trainer(leads_model(), train.select_environments([0, 1]), None, config())
    three_variables = TrajectorySet(torch.zeros(3, 2, 8, 3, dtype=torch.float64), train.times,
                                    ("a", "b", "c"), (0, 1, 2))
    with pytest.raises(ValueError, match=r"cannot evaluate the states of train \(state shape \(3,\)"):
        Trainer(NeuralODE(MLP(2, 2, (4,), dtype=torch.float64)), three_variables, None, config())
    with pytest.raises(ValueError, match=r"prefixes \['physics'\] match no trainable parameter"):
        Trainer(leads_model(), train, None, config(learning_rates={"physics": 1e-2}))
    with pytest.raises(ValueError, match="batch_size"):
        config(batch_size=0)


def test_world_size_must_divide_the_minibatches(splits, monkeypatch):
    from physml.training import DistributedContext

    two_processes = classmethod(lambda cls, device=None: cls(world_size=2, rank=0, local_rank=0))
    monkeypatch.setattr(DistributedContext, "from_environment", two_processes)
    train, _, _ = splits
    with pytest.raises(ValueError, match=r"minibatches of \[1, 3\].*WORLD_SIZE=2"):
        Trainer(leads_model(), train, None, config(batch_size=3))


def test_adjoint_training_follows_backpropagation(splits):
    train, validation, _ = splits
    settings = config(epochs=2, restart_probability=0.0)
    models = []
    for adjoint in (False, True):
        model = leads_model(method="dopri5", rtol=1e-10, atol=1e-12, adjoint=adjoint)
        fit_trajectories(model, train, validation, settings)
        models.append(model)
    for name, value in models[0].state_dict().items():
        torch.testing.assert_close(models[1].state_dict()[name], value, rtol=1e-5, atol=1e-7)


def test_progress_bar_only_when_asked_or_on_a_terminal(splits, capsys):
    train, validation, _ = splits
    fit_trajectories(leads_model(), train, validation, config(epochs=1, progress=None))
    assert capsys.readouterr().err == ""  # captured output is not a terminal
    fit_trajectories(leads_model(), train, validation, config(epochs=1, progress=True))
    assert "training" in capsys.readouterr().err
