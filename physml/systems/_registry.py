"""Where physml finds systems: the ``physml.systems`` entry-point group, plus runtime registration.

physml never imports ``simulators``; the simulators package (or any third-party package) declares its
systems in its packaging metadata::

    [project.entry-points."physml.systems"]
    pendulum = "simulators.pendulum:DampedPendulum"

so that an installed wheel is enough.  Code that is not packaged can call :func:`register_system`.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from ._system import System

ENTRY_POINT_GROUP = "physml.systems"
_registered: dict[str, type[System]] = {}


def register_system(cls: type[System]) -> type[System]:
    """Register a :class:`System` subclass under its ``name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, System)):
        raise TypeError(f"register_system expects a System subclass, got {cls!r}")
    if not cls.name:
        raise ValueError(f"{cls.__name__} must set the class attribute 'name' to be registered")
    _registered[cls.name] = cls
    return cls


def _entry_points() -> dict:
    return {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}


def available_systems() -> list[str]:
    """Names of every registered or installed system, sorted."""
    return sorted(set(_registered) | set(_entry_points()))


def get_system(name: str) -> type[System]:
    """Return the system class registered under ``name``.

    Raises
    ------
    ValueError
        If no system has that name; the message lists the known ones.
    """
    if name in _registered:
        return _registered[name]
    found = _entry_points().get(name)
    if found is None:
        known = ", ".join(available_systems()) or "none (is the simulators package installed?)"
        raise ValueError(f"unknown system {name!r}; known systems are: {known}")
    cls = found.load()
    if not (isinstance(cls, type) and issubclass(cls, System)):
        raise TypeError(f"entry point {name!r} ({found.value}) does not name a physml System subclass")
    return cls
