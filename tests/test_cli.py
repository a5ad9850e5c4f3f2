"""The command line: `physml info|demo|generate|validate|list` run, print and exit as they promise."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from physml.cli import main
from physml.data import open_dataset, write_dataset


def test_info_lists_versions_and_methods(capsys):
    assert main(["info"]) == 0
    printed = capsys.readouterr().out
    assert "torch" in printed and "dopri5 (5)" in printed and "kvaerno3 (3)" in printed
    assert "SDE methods: euler" in printed


def test_demo_prints_a_table_with_small_errors(capsys):
    assert main(["demo", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith(("Lotka", "Van der Pol", "Robertson"))]
    assert len(rows) == 10
    for row in rows:
        assert row[-6] == "success"
        # Relative error against SciPy at rtol 1e-12 for a solve at rtol 1e-6.
        assert float(row[-2]) < 1e-3, row


def test_demo_rejects_bad_thread_count():
    with pytest.raises(SystemExit):
        main(["demo", "--threads", "0"])


# -- dataset commands ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The directory of `physml generate aphynity_pendulum --no-figure` (mini), run once for this module."""
    out = tmp_path_factory.mktemp("cli")
    assert main(["generate", "aphynity_pendulum", "--out", str(out), "--no-figure"]) == 0
    return out / "aphynity_pendulum" / "mini"


def test_generate_prints_a_summary_and_a_figure_path_then_refuses_to_overwrite(tmp_path, capsys):
    # Same command twice: the second finds the data up to date; another configuration is refused.
    assert main(["generate", "aphynity_pendulum", "--scale", "mini", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    directory = tmp_path / "aphynity_pendulum" / "mini"
    assert f"-> {directory}" in printed
    assert "train: 4 samples (QC good 4, non_finite 0, solver_failure 0)" in printed
    assert "variables: q [rad] pendulum angle; p [rad s-1] angular velocity" in printed
    assert f"figure: {directory / 'train.png'}" in printed and (directory / "train.png").is_file()

    assert main(["generate", "aphynity_pendulum", "--out", str(tmp_path), "--no-figure"]) == 0
    assert "is up to date" in capsys.readouterr().out
    from physml.data.specs import __path__ as spec_directories  # the shipped spec, edited below

    changed = tmp_path / "changed.toml"
    text = (Path(list(spec_directories)[0]) / "aphynity_pendulum.toml").read_text(encoding="utf-8")
    changed.write_text(text.replace("alpha = 0.2", "alpha = 0.3"), encoding="utf-8")
    assert "alpha = 0.3" in changed.read_text(encoding="utf-8")
    assert main(["generate", str(changed), "--out", str(tmp_path), "--no-figure"]) == 1
    assert "already holds a dataset" in capsys.readouterr().err
    assert main(["generate", "aphynity_pendulum", "--out", str(tmp_path), "--overwrite", "--no-figure"]) == 0
    assert "figure:" not in capsys.readouterr().out


def test_generate_unknown_dataset_lists_the_known_ones(tmp_path, capsys):
    assert main(["generate", "pendulum", "--out", str(tmp_path)]) == 2
    assert "unknown dataset 'pendulum'; known datasets are: " in capsys.readouterr().err
    assert main(["generate", "aphynity_pendulum", "--scale", "huge", "--out", str(tmp_path)]) == 2
    assert "scale 'huge' is not defined" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_generate_rejects_workers_with_scheduler():
    with pytest.raises(SystemExit):
        main(["generate", "aphynity_pendulum", "--workers", "2", "--scheduler", "tcp://localhost:8786"])
    with pytest.raises(SystemExit):
        main(["generate", "aphynity_pendulum", "--workers", "0"])


def test_validate_reports_ok_and_every_violation(generated, tmp_path, capsys):
    directory = generated
    assert main(["validate", str(directory)]) == 0
    assert "OK:" in capsys.readouterr().out
    with open_dataset(directory / "test.nc") as dataset:
        broken = dataset.load()
    del broken.attrs["license"]
    del broken["q"].attrs["units"]
    broken["p"].values[1, 5] = np.nan
    path = write_dataset(broken, tmp_path / "broken.nc")
    assert main(["validate", str(path)]) == 1
    printed = capsys.readouterr().out
    assert "missing global attribute 'license'" in printed
    assert "data variable 'q' has no 'units' attribute" in printed
    assert "sample 1 of 'p' holds non-finite values but qc_flag is 0" in printed
    assert "3 schema violation(s)" in printed


def test_info_with_a_path_summarises_the_dataset(generated, capsys):
    assert main(["info", str(generated / "train.nc")]) == 0
    printed = capsys.readouterr().out
    for fragment in ("dims: sample=4, time=40", "splits: train 4", "parameters: omega0_squared = 1.09662 s-2",
                     "QC: good 4", "solver: dopri8", "generation config (aphynity_pendulum, scale mini)"):
        assert fragment in printed
    assert main(["info", str(generated)]) == 0
    assert "test: 4 samples" in capsys.readouterr().out
    assert main(["info", str(generated / "nowhere.nc")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_list_and_python_dash_m():
    # One subprocess: `python -m physml` is the documented second entry point.
    result = subprocess.run([sys.executable, "-m", "physml", "list"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("aphynity_pendulum"))
    assert "system damped_pendulum" in line and "mini 12" in line and "paper 75" in line
