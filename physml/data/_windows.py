"""A lazy map-style torch Dataset of (sample, start time) windows over one split file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class TrajectoryWindows:
    """Windows of ``input_steps`` frames followed by ``output_steps`` frames, for every sample and start.

    The file is opened lazily in the process that reads it (each DataLoader worker opens its own
    handle); ``__init__`` only reads the sizes and QC flags and closes the file again, and pickling
    drops any open handle.  Flagged samples (``qc_flag != 0``) are left out unless asked for.

    Parameters
    ----------
    path : path-like
        One split file (``.nc`` or ``.zarr``) written by :func:`physml.data.generate`.
    input_steps, output_steps : int
        Frames given as input and frames to predict (``output_steps`` may be 0).
    stride : int
        Step between consecutive start times.
    variables : sequence of str, optional
        Data variables to stack along the channel axis (default: all, in file order).
    include_flagged : bool
        Also serve samples whose ``qc_flag`` is not 0.

    Each item is a dict: ``inputs`` ``(input_steps, n_variables, *grid)``, ``targets``
    ``(output_steps, n_variables, *grid)``, ``times`` (float64), ``sample``, ``start``, ``environment``.

    Examples
    --------
    >>> import tempfile
    >>> from physml.data import generate
    >>> report = generate("aphynity_pendulum", "mini", out=tempfile.mkdtemp())
    >>> windows = TrajectoryWindows(report.files["train"], input_steps=2, output_steps=3, stride=5)
    >>> len(windows), windows[0]["inputs"].shape, windows[0]["targets"].shape
    (32, torch.Size([2, 2]), torch.Size([3, 2]))
    """

    def __init__(
        self,
        path,
        input_steps: int,
        output_steps: int,
        stride: int = 1,
        variables=None,
        include_flagged: bool = False,
    ):
        from ._schema import open_dataset

        for name, value, minimum in (
            ("input_steps", input_steps, 1),
            ("output_steps", output_steps, 0),
            ("stride", stride, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        self.path = Path(os.fspath(path))
        self.input_steps, self.output_steps, self.stride = input_steps, output_steps, stride
        # A short-lived open for the sizes only: no handle survives into forked DataLoader workers.
        with open_dataset(self.path) as dataset:
            available = list(dataset.data_vars)
            self.variables = list(available if variables is None else variables)
            unknown = sorted(set(self.variables) - set(available))
            if unknown:
                raise ValueError(f"variables {unknown} are not in {str(self.path)!r}; it holds {available}")
            n_time = dataset.sizes["time"]
            flags = np.asarray(dataset["qc_flag"].values)
            self.environments = np.asarray(dataset["environment"].values).astype(np.int64)
        window = input_steps + output_steps
        if window > n_time:
            raise ValueError(
                f"input_steps + output_steps = {window} exceeds the {n_time} saved frames of "
                f"{str(self.path)!r}"
            )
        self.samples = np.arange(len(flags)) if include_flagged else np.flatnonzero(flags == 0)
        self.starts_per_sample = (n_time - window) // stride + 1
        self._dataset = None
        self._owner = None

    def __len__(self) -> int:
        return len(self.samples) * self.starts_per_sample

    def _open(self):
        # Reopen in every new process: a handle inherited through fork is not safe with HDF5.
        if self._dataset is None or self._owner != os.getpid():
            from ._schema import open_dataset

            self._dataset = open_dataset(self.path)
            self._owner = os.getpid()
        return self._dataset

    def __getitem__(self, index: int) -> dict:
        import torch

        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} windows")
        index %= len(self)
        sample = int(self.samples[index // self.starts_per_sample])
        start = (index % self.starts_per_sample) * self.stride
        stop = start + self.input_steps + self.output_steps
        dataset = self._open()
        frames = np.stack(
            [
                np.asarray(dataset[name].isel(sample=sample, time=slice(start, stop)).values)
                for name in self.variables
            ],
            axis=1,
        )
        frames = torch.from_numpy(np.ascontiguousarray(frames))
        times = torch.tensor(dataset["time"].values[start:stop], dtype=torch.float64)
        return {
            "inputs": frames[: self.input_steps],
            "targets": frames[self.input_steps :],
            "times": times,
            "sample": sample,
            "start": start,
            "environment": int(self.environments[sample]),
        }

    def close(self) -> None:
        """Close this process's file handle (it reopens on the next access)."""
        if self._dataset is not None:
            self._dataset.close()
        self._dataset = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_dataset"] = None
        state["_owner"] = None
        return state
