"""Where a result came from: machine, software versions, git revision; and crash-safe text writes.

Studies and benchmarks stamp every results file with these, so a number can be traced to the code and
the hardware that produced it.

Examples
--------
>>> from physml.provenance import machine_description
>>> description = machine_description(threads=1)
>>> sorted(description)[:3]
['cpu_model', 'git_sha', 'load_average_start']
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import tempfile
from pathlib import Path

import torch

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision(repository: Path = REPOSITORY_ROOT) -> str:
    """Commit SHA of ``repository`` read from ``.git`` directly (no git process), or ``"unknown"``.

    Reading the files rather than running ``git`` keeps this working where git is not installed (an
    installed wheel, a container); a wheel outside a checkout gives ``"unknown"``.
    """
    try:
        git_directory = repository / ".git"
        if git_directory.is_file():  # a worktree: ".git" holds "gitdir: <path>"
            git_directory = (repository / git_directory.read_text().split(":", 1)[1].strip()).resolve()
        common = git_directory
        if (git_directory / "commondir").is_file():
            common = (git_directory / (git_directory / "commondir").read_text().strip()).resolve()
        head = (git_directory / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        reference = head.split(":", 1)[1].strip()
        for directory in (git_directory, common):
            if (directory / reference).is_file():
                return (directory / reference).read_text().strip()
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + reference):
                    return line.split()[0]
    except (OSError, IndexError):
        pass
    return "unknown"


def package_version(name: str) -> str | None:
    """Installed version of distribution ``name``, or ``None`` when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_description(threads: int, packages: tuple[str, ...] = ()) -> dict:
    """Hardware, software versions, thread settings and git revision of this run.

    Parameters
    ----------
    threads : int
        The thread count the caller asked for (``--threads``); torch's actual setting is recorded too.
    packages : tuple of str
        Extra distributions whose versions to record (peers of a benchmark, pysindy for a study, ...);
        torch, numpy, scipy and physml are always recorded.
    """
    try:
        usable_cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable_cores = os.cpu_count()
    versions = {
        name: package_version(name) for name in ("torch", "numpy", "scipy", "physml", *packages)
    }
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores,
        "platform": platform.platform(),
        "python": platform.python_version(),
        **versions,
        "torch_build": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "threads_requested": threads,
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git_sha": git_revision(),
    }


def atomic_write(path: Path | str, write, *, binary: bool = False) -> Path:
    """Call ``write(handle)`` on a temporary file in ``path``'s directory, then ``os.replace`` it into place.

    A crash or Ctrl-C mid-write leaves the previous file intact, never a truncated one.  Returns the path.

    Examples
    --------
    >>> import tempfile
    >>> path = atomic_write(tempfile.mkdtemp() + "/note.txt", lambda handle: handle.write("done"))
    >>> path.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        handle = os.fdopen(descriptor, "wb") if binary else os.fdopen(descriptor, "w", encoding="utf-8")
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda handle: handle.write(text))
