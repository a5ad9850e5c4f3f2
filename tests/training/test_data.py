"""TrajectorySet and load_trajectories: layout, environments, variables, windows."""

import numpy as np
import pytest
import torch
import xarray as xr

from physml.training import TrajectorySet, load_trajectories


def lv_like_dataset(n_per_environment=(2, 2, 2), flagged=()):
    rows = sum(n_per_environment)
    environment = np.repeat(np.arange(len(n_per_environment)), n_per_environment)
    qc = np.zeros(rows, dtype=np.int8)
    qc[list(flagged)] = 1
    times = np.arange(5) * 0.5
    x = np.arange(rows)[:, None] + times[None, :]
    return xr.Dataset(
        {"x": (("sample", "time"), x), "y": (("sample", "time"), -x)},
        coords={"sample": np.arange(rows), "time": times, "environment": ("sample", environment),
                "qc_flag": ("sample", qc), "alpha": ("sample", 0.5 + environment * 0.25),
                "seed": ("sample", np.arange(rows))},
        attrs={"id": "test:lv"},
    )


def test_groups_samples_by_environment_and_keeps_parameters():
    data = load_trajectories(lv_like_dataset())
    assert data.states.shape == (3, 2, 5, 2)
    assert data.environments == (0, 1, 2) and data.variables == ("x", "y")
    assert torch.equal(data.states[1, 0, :, 0], torch.tensor([2.0, 2.5, 3.0, 3.5, 4.0], dtype=torch.float64))
    assert torch.equal(data.states[..., 1], -data.states[..., 0])
    assert torch.equal(data.parameters["alpha"][:, 0], torch.tensor([0.5, 0.75, 1.0], dtype=torch.float64))
    assert "seed" not in data.parameters  # bookkeeping, not physics


def test_selects_environments_and_variables_in_the_order_asked():
    data = load_trajectories(lv_like_dataset(), variables=["y"], environments=[2, 0])
    assert data.environments == (2, 0) and data.variables == ("y",)
    assert float(data.states[0, 0, 0, 0]) == -4.0


def test_missing_environments_and_unknown_variables_are_named():
    with pytest.raises(ValueError, match=r"environments \[7\] are missing.*\[0, 1, 2\]"):
        load_trajectories(lv_like_dataset(), environments=[0, 7])
    with pytest.raises(ValueError, match=r"variables \['u'\].*\['x', 'y'\]"):
        load_trajectories(lv_like_dataset(), variables=["x", "u"])


def test_flagged_samples_are_left_out_and_counts_must_agree():
    with pytest.raises(ValueError, match="different numbers"):
        load_trajectories(lv_like_dataset(flagged=(0,)))
    data = load_trajectories(lv_like_dataset(flagged=(0,)), include_flagged=True)
    assert data.n_samples == 2
    trimmed = load_trajectories(lv_like_dataset((2, 3, 2), flagged=(2,)))
    assert trimmed.n_samples == 2 and float(trimmed.states[1, 0, 0, 0]) == 3.0


def test_reads_generated_fields(tmp_path):
    from physml.data import generate

    report = generate("aphynity_pendulum", "mini", out=tmp_path)
    data = load_trajectories(report.files["validation"].parent, "validation", dtype=torch.float32)
    assert data.states.shape == (1, 4, 40, 2) and data.states.dtype == torch.float32
    assert data.variables == ("q", "p")
    torch.testing.assert_close(data.parameters["alpha"], torch.full((1, 4), 0.2, dtype=torch.float64))


def test_windows_cut_trajectories():
    times = torch.arange(6, dtype=torch.float64)
    states = torch.arange(12, dtype=torch.float64).view(1, 2, 6, 1)
    data = TrajectorySet(states, times, ("w",), (0,))
    windows = data.windows(length=3, stride=2)
    assert windows.states.shape == (1, 4, 3, 1)
    assert windows.states[0, :, 0, 0].tolist() == [0.0, 2.0, 6.0, 8.0]
    assert torch.equal(windows.times, times[:3])
    with pytest.raises(ValueError, match="length"):
        data.windows(length=7)


def test_trajectory_set_checks_its_shapes():
    with pytest.raises(ValueError, match="environments"):
        TrajectorySet(torch.zeros(2, 1, 3, 2), torch.arange(3.0), ("x", "y"), (0,))
    with pytest.raises(ValueError, match="variables"):
        TrajectorySet(torch.zeros(1, 1, 3, 2), torch.arange(3.0), ("x",), (0,))
    with pytest.raises(ValueError, match="times"):
        TrajectorySet(torch.zeros(1, 1, 3, 2), torch.arange(4.0), ("x", "y"), (0,))
