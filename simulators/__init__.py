"""physml's physical systems, one module per system, built on physml (physml never imports this package).

Each system is a :class:`physml.systems.System`; the package declares them in the ``physml.systems``
entry-point group (see ``pyproject.toml``), which is how physml's registry, the dataset generator and
the CLI find them from an installed wheel.
"""
