"""The dataset specs ship inside the wheel and load from an installed copy (slow: builds a wheel)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_specs_load_from_an_installed_wheel(tmp_path):
    pytest.importorskip("setuptools")  # the build runs without isolation, with this environment's setuptools
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPOSITORY / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("physml", "simulators", "datasets"):
        shutil.copytree(REPOSITORY / name, source / name, symlinks=True, ignore=ignore)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "wheel"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "wheel").glob("physml-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert (
        "physml/data/specs/aphynity_pendulum.toml" in names
        and "physml/data/specs/aphynity_pendulum.md" in names
    )
    assert not any(name.startswith("datasets/") for name in names)

    target = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    script = (
        "import physml.data as data, physml.data._spec as spec; "
        "print(data.__file__); print(spec._spec_directory()); "
        "print(data.load_spec('aphynity_pendulum').system, sorted(data.available_datasets()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    module_file, spec_directory, loaded = result.stdout.splitlines()
    assert module_file.startswith(str(target)) and str(target) in spec_directory
    assert loaded.startswith("damped_pendulum") and "aphynity_pendulum" in loaded
