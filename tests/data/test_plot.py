"""Figures: labels from CF attributes; an overview figure for ODE datasets."""

import pytest

pytest.importorskip("matplotlib")

import xarray as xr  # noqa: E402

from physml.plot import label, plot_dataset  # noqa: E402


def test_label_uses_long_name_and_units():
    assert label(
        xr.DataArray([1.0], dims="t", attrs={"long_name": "angular velocity", "units": "rad s-1"})
    ) == ("angular velocity [rad s-1]")
    assert label(xr.DataArray([1.0], dims="t", name="u")) == "u"


def test_overview_figure_of_an_ode_dataset(pendulum_mini, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    drawn = {}
    original = Figure.savefig

    def keep_labels(self, *args, **kwargs):
        drawn["labels"] = [axis.get_xlabel() for axis in self.axes] + [
            axis.get_ylabel() for axis in self.axes
        ]
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep_labels)
    path = plot_dataset(pendulum_mini.files["train"], tmp_path / "figure.png")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pendulum angle [rad]" in drawn["labels"] and "angular velocity [rad s-1]" in drawn["labels"]
    assert "time [s]" in drawn["labels"]
