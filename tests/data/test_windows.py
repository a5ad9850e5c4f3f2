"""TrajectoryWindows: lazy, picklable, correct windows; flagged samples left out; DataLoader workers."""

import pickle

import numpy as np
import pytest
import torch

import physml.data._generate as generation
from physml.data import TrajectoryWindows, generate, open_dataset


def test_windows_hold_the_stored_frames(pendulum_mini):
    path = pendulum_mini.files["train"]
    windows = TrajectoryWindows(path, input_steps=3, output_steps=2, stride=7)
    starts = list(range(0, 40 - 5 + 1, 7))
    assert len(windows) == 4 * len(starts)
    item = windows[len(starts) + 2]  # sample 1, third start
    with open_dataset(path) as dataset:
        q, p = dataset["q"].values, dataset["p"].values
        time = dataset["time"].values
    start = starts[2]
    expected = np.stack([q[1, start : start + 5], p[1, start : start + 5]], axis=1)
    np.testing.assert_array_equal(item["inputs"].numpy(), expected[:3])
    np.testing.assert_array_equal(item["targets"].numpy(), expected[3:])
    np.testing.assert_array_equal(item["times"].numpy(), time[start : start + 5])
    assert (item["sample"], item["start"], item["environment"]) == (1, start, 0)
    assert windows[-1]["start"] == starts[-1]
    with pytest.raises(IndexError):
        windows[len(windows)]


def test_no_file_handle_before_first_access_and_pickling_drops_it(pendulum_mini):
    windows = TrajectoryWindows(pendulum_mini.files["train"], input_steps=1, output_steps=1, variables=["p"])
    assert windows._dataset is None  # nothing open after __init__: safe to fork into DataLoader workers
    first = windows[0]
    assert windows._dataset is not None and first["inputs"].shape == (1, 1)
    clone = pickle.loads(pickle.dumps(windows))
    assert clone._dataset is None
    torch.testing.assert_close(clone[5]["targets"], windows[5]["targets"])
    windows.close()


def test_bad_arguments_name_the_argument(pendulum_mini):
    path = pendulum_mini.files["train"]
    with pytest.raises(ValueError, match="input_steps must be an integer >= 1, got 0"):
        TrajectoryWindows(path, input_steps=0, output_steps=1)
    with pytest.raises(ValueError, match=r"variables \['r'\] are not in"):
        TrajectoryWindows(path, input_steps=1, output_steps=1, variables=["r"])
    with pytest.raises(ValueError, match="input_steps \\+ output_steps = 41 exceeds the 40 saved frames"):
        TrajectoryWindows(path, input_steps=40, output_steps=1)


def test_flagged_samples_are_skipped_unless_asked_for(tiny_spec, tmp_path, monkeypatch):
    real = generation.simulate_shard

    def blow_up_first_sample(system, initial_states, times, spec, scale):
        solution = real(system, initial_states, times, spec, scale)
        solution.ys[-1, 0, 0] = float("inf")
        return solution

    monkeypatch.setattr(generation, "simulate_shard", blow_up_first_sample)
    report = generate(tiny_spec, out=tmp_path)
    kept = TrajectoryWindows(report.files["train"], input_steps=2, output_steps=1)
    everything = TrajectoryWindows(report.files["train"], input_steps=2, output_steps=1, include_flagged=True)
    assert kept.samples.tolist() == [1, 3] and len(everything) == 5 * kept.starts_per_sample
    assert all(torch.isfinite(kept[index]["targets"]).all() for index in range(len(kept)))


def test_dataloader_with_two_workers_sees_every_window_once(pendulum_mini):
    windows = TrajectoryWindows(pendulum_mini.files["train"], input_steps=4, output_steps=4, stride=4)
    loader = torch.utils.data.DataLoader(windows, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    inputs = torch.cat([batch["inputs"] for batch in batches])
    assert inputs.shape == (len(windows), 4, 2)
    torch.testing.assert_close(
        inputs, torch.stack([windows[index]["inputs"] for index in range(len(windows))])
    )
    pairs = {
        (int(s), int(t)) for batch in batches for s, t in zip(batch["sample"], batch["start"], strict=False)
    }
    assert len(pairs) == len(windows)
