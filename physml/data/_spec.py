"""Declarative dataset specs: one TOML file per dataset, parsed strictly into frozen dataclasses.

The specs live in the repository's ``datasets/`` directory, which is shipped inside the wheel as the
resource package ``physml.data.specs`` (a symbolic link ``physml/data/specs -> ../../datasets``
that setuptools follows), so :func:`load_spec` and :func:`available_datasets` work from an installed
wheel as well as from a source checkout.  No importable top-level ``datasets`` package is created: that
name belongs to Hugging Face's library.

Format (every key is checked; unknown keys and wrong types are errors naming the key)::

    name = "aphynity_pendulum"          # the dataset's name (file stem)
    system = "damped_pendulum"          # registry name of the System (physml.systems entry point)
    title = "..."                        # CF title
    summary = "..."                      # ACDD summary
    references = ["..."]                 # one string or a list of strings
    license = "CC-BY-4.0"
    product_version = "1.0.0"            # bump on any change to the generated content
    samples_per_shard = 32               # shard size, fixed here (never by the worker count)
    dtype = "float64"                    # storage dtype of the state variables (float32 | float64)

    [parameters]                         # fixed physical parameters (system defaults otherwise)
    alpha = 0.2

    [system_options]                     # keyword arguments of the system's constructor (e.g. grid)

    [[environments]]                     # optional: parameter sets, each with an integer id
    id = 0
    alpha = 0.5

    [time]                               # saved frames: start + k * save_interval, k = 0 .. frames-1
    start = 0.0
    end = 20.0                           # exclusive; give `end`, `frames`, or both (consistent)
    save_interval = 0.5

    [solver]
    method = "dopri8"
    rtol = 1e-10
    atol = 1e-10
    # internal_dt = 1e-3                 # step of fixed-step methods (options step_size)

    [seeds]
    rule = "spawn"                       # or "paper_index"
    entropy = 20210104                   # root SeedSequence entropy

    [scales.mini]                        # samples per environment and split
    train = 4
    test = 4
    # samples_per_shard = 8              # optional per-scale shard size
    # [scales.mini.system_options]       # optional per-scale overrides (e.g. a coarser grid)
    # [scales.mini.time]                 # optional per-scale time grid (keys of [time], merged over it)
    # [scales.mini.solver]               # optional per-scale solver keys, merged over [solver]

Optional keys for the other benchmark shapes (each one checked like the rest):

- ``[[environments]]`` may set ``adaptation = true`` (an environment met only after training, CoDA) and a
  sub-table ``[environments.system_options]`` (constructor options of that environment, e.g. a forcing).
  Adaptation environments fill the splits ``adaptation_train`` / ``adaptation_test`` (sizes given in the
  scales like the others); the other environments fill ``train`` / ``validation`` / ``test``.
- ``[seeds] rule`` may also be ``"paper_index_reversed"`` (train sample i seed 2**31 - 1 - i, test
  sample i seed i: APHYNITY's wave data) or ``"deterministic"`` (no random draw at all; required by,
  and only allowed with, ``initial_condition`` or ``[reference]``; ``entropy`` may then be left out).
- ``initial_condition = "paper_initial_condition"``: a method of the system, called without arguments,
  returning one initial state ``(1, *state_shape)``; every sample starts from it.
- ``[reference]``: the data are not integrated but computed by a function of the system's own module
  (e.g. an exact solution): ``function = "raissi_reference"`` plus its keyword arguments.  The function
  returns ``(*grid coordinates, times, values)``; coordinates and times must match the spec's.  No
  ``[solver]`` table then.
- ``[output]``: ``spatial_stride = 4`` stores every 4th grid point along each spatial dimension (data
  generated on a finer grid than the one stored); ``velocity = true`` also stores the velocity the
  system prescribes, ``system.velocity(times)``, as one data variable per ``system.velocity_variables``.
- ``[solver]``: ``rtol`` and ``atol`` may be left out when ``internal_dt`` is given (fixed-step
  schemes ignore them; the files then record "not applicable").
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

#: Split names and the integer id each one takes in seed spawn keys.  Fixed by name, so adding a
#: validation split to a spec never changes the train or test data.
SPLIT_IDS: dict[str, int] = {
    "train": 0,
    "validation": 1,
    "test": 2,
    "adaptation_train": 3,
    "adaptation_test": 4,
}
#: Splits filled by the adaptation environments (CoDA's new environments); the others by the rest.
ADAPTATION_SPLITS = ("adaptation_train", "adaptation_test")
SEED_RULES = ("spawn", "paper_index", "paper_index_reversed", "deterministic")
STORAGE_DTYPES = ("float32", "float64")
#: Largest seed of the ``paper_index`` rule: test sample i uses ``PAPER_INDEX_TOP - i`` (APHYNITY, LEADS).
PAPER_INDEX_TOP = 2**31 - 1
_SPEC_PACKAGE = "physml.data.specs"


class SpecError(ValueError):
    """A dataset spec is malformed: the message names the file, the key, the value and what was expected."""


@dataclass(frozen=True)
class TimeGrid:
    """Saved times ``start + k * save_interval`` for ``k = 0 .. frames - 1`` (the end is excluded)."""

    start: float
    save_interval: float
    frames: int

    @property
    def end(self) -> float:
        """Exclusive end of the saved interval, ``start + frames * save_interval``."""
        return self.start + self.frames * self.save_interval

    def times(self):
        """The saved times as a float64 numpy array (computed by multiplication, never by accumulation)."""
        import numpy as np

        return self.start + self.save_interval * np.arange(self.frames, dtype=np.float64)


@dataclass(frozen=True)
class SolverSettings:
    """Integration method and tolerances passed to ``System.simulate``.

    ``rtol``/``atol`` are ``None`` for fixed-step schemes that do not use them (``internal_dt`` set).
    """

    method: str
    rtol: float | None
    atol: float | None
    internal_dt: float | None = None

    def options(self) -> dict:
        """Solver ``options``: the fixed step when ``internal_dt`` is set, nothing otherwise."""
        return {} if self.internal_dt is None else {"step_size": self.internal_dt}

    def simulate_arguments(self) -> dict:
        """Keyword arguments of ``System.simulate``: method, the tolerances that are set, options."""
        arguments = {"method": self.method, "options": self.options()}
        arguments.update(
            {name: getattr(self, name) for name in ("rtol", "atol") if getattr(self, name) is not None}
        )
        return arguments


@dataclass(frozen=True)
class ReferenceSettings:
    """A deterministic reference solution computed by ``function`` of the system's module."""

    function: str
    arguments: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OutputSettings:
    """What is stored besides the state: spatial subsampling and the prescribed velocity."""

    spatial_stride: int = 1
    velocity: bool = False


@dataclass(frozen=True)
class SeedSettings:
    """Seed rule (``"spawn"`` or ``"paper_index"``) and the root SeedSequence entropy."""

    rule: str
    entropy: int


@dataclass(frozen=True)
class Environment:
    """One parameter set: an integer id and parameter values overriding the spec's fixed ones.

    ``adaptation`` marks an environment kept for adaptation (splits ``adaptation_train`` and
    ``adaptation_test``); ``system_options`` are constructor options of this environment only.
    """

    id: int
    parameters: dict[str, float]
    adaptation: bool = False
    system_options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Scale:
    """Samples per environment for each split, the shard size and system-option overrides of one scale.

    ``time`` and ``solver`` replace the spec's time grid and solver settings at this scale (``None``:
    the spec's).
    """

    name: str
    sizes: dict[str, int]
    samples_per_shard: int
    system_options: dict = field(default_factory=dict)
    time: TimeGrid | None = None
    solver: SolverSettings | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed dataset spec; build one with :func:`load_spec` or :func:`parse_spec`.

    Examples
    --------
    >>> from physml.data import load_spec
    >>> spec = load_spec("aphynity_pendulum")
    >>> spec.system, spec.time.frames, spec.scale("paper").sizes
    ('damped_pendulum', 40, {'train': 25, 'validation': 25, 'test': 25})
    """

    name: str
    system: str
    title: str
    summary: str
    references: tuple[str, ...]
    license: str
    product_version: str
    time: TimeGrid
    solver: SolverSettings | None
    seeds: SeedSettings
    scales: dict[str, Scale]
    parameters: dict[str, float] = field(default_factory=dict)
    system_options: dict = field(default_factory=dict)
    environments: tuple[Environment, ...] = ()
    samples_per_shard: int = 64
    dtype: str = "float32"
    initial_condition: str | None = None
    reference: ReferenceSettings | None = None
    output: OutputSettings = field(default_factory=OutputSettings)
    source: str = ""

    def scale(self, name: str) -> Scale:
        """The scale called ``name``; the error lists the spec's scales."""
        if name not in self.scales:
            raise ValueError(
                f"scale {name!r} is not defined by dataset {self.name!r}; "
                f"its scales are {sorted(self.scales)}"
            )
        return self.scales[name]

    def environment_list(self) -> tuple[Environment, ...]:
        """The environments, or a single environment 0 holding the fixed parameters when none are given."""
        return self.environments or (Environment(id=0, parameters={}),)

    def environments_for(self, split: str) -> tuple[Environment, ...]:
        """The environments that fill ``split``: adaptation ones for the adaptation splits, others else."""
        adaptation = split in ADAPTATION_SPLITS
        return tuple(env for env in self.environment_list() if env.adaptation == adaptation)

    def environment_parameters(self, environment: Environment) -> dict[str, float]:
        """Fixed parameters overridden by the environment's own values."""
        return {**self.parameters, **environment.parameters}

    def system_options_for(self, scale: str, environment: Environment | None = None) -> dict:
        """System constructor options with the scale's, then the environment's overrides applied."""
        options = {**self.system_options, **self.scale(scale).system_options}
        return {**options, **(environment.system_options if environment is not None else {})}

    def time_for(self, scale: str) -> TimeGrid:
        """The saved time grid of one scale (the scale's own, else the spec's)."""
        return self.scale(scale).time or self.time

    def solver_for(self, scale: str) -> SolverSettings | None:
        """The solver settings of one scale (the scale's own, else the spec's; ``None`` for references)."""
        return self.scale(scale).solver or self.solver

    def split_totals(self, scale: str) -> dict[str, int]:
        """Samples of each split over all its environments (sizes are per environment)."""
        return {
            split: size * len(self.environments_for(split)) for split, size in self.scale(scale).sizes.items()
        }

    def to_dict(self) -> dict:
        """Plain data (JSON-serialisable) equivalent to the TOML file, without the ``source`` path."""
        data = asdict(self)
        data.pop("source")
        data["references"] = list(self.references)
        data["environments"] = [
            {
                "id": env.id,
                **env.parameters,
                **({"adaptation": True} if env.adaptation else {}),
                **({"system_options": env.system_options} if env.system_options else {}),
            }
            for env in self.environments
        ]
        data["time"] = _time_dict(self.time)
        if self.solver is None:
            data.pop("solver")
        else:
            data["solver"] = _solver_dict(self.solver)
        if self.seeds.rule == "deterministic" and self.seeds.entropy == 0:
            data["seeds"] = {"rule": "deterministic"}
        for key in ("initial_condition", "reference"):
            if data[key] is None:
                data.pop(key)
        if self.reference is not None:
            data["reference"] = {"function": self.reference.function, **self.reference.arguments}
        if self.output == OutputSettings():
            data.pop("output")
        data["scales"] = {
            name: {
                **scale.sizes,
                "samples_per_shard": scale.samples_per_shard,
                **({"system_options": scale.system_options} if scale.system_options else {}),
                **({"time": _time_dict(scale.time)} if scale.time is not None else {}),
                **({"solver": _solver_dict(scale.solver)} if scale.solver is not None else {}),
            }
            for name, scale in self.scales.items()
        }
        return data

    def resolved_config(self, scale: str) -> dict:
        """The full generation config of one scale (what ``physml_config`` stores as JSON)."""
        chosen = self.scale(scale)
        return {
            "dataset": self.name,
            "scale": scale,
            "spec": self.to_dict(),
            "resolved": {
                "system": self.system,
                "system_options": self.system_options_for(scale),
                "sizes_per_environment": dict(chosen.sizes),
                "split_totals": self.split_totals(scale),
                "samples_per_shard": chosen.samples_per_shard,
                "time": _time_dict(self.time_for(scale)),
                "solver": None if self.solver_for(scale) is None else _solver_dict(self.solver_for(scale)),
                "environments": [
                    {
                        "id": env.id,
                        "adaptation": env.adaptation,
                        "parameters": self.environment_parameters(env),
                        "system_options": self.system_options_for(scale, env),
                    }
                    for env in self.environment_list()
                ],
                "split_ids": {split: SPLIT_IDS[split] for split in chosen.sizes},
            },
        }


def _solver_dict(solver: SolverSettings) -> dict:
    return {key: value for key, value in asdict(solver).items() if value is not None}


def _time_dict(time: TimeGrid) -> dict:
    return {"start": time.start, "end": time.end, "save_interval": time.save_interval, "frames": time.frames}


# -- strict TOML reading ---------------------------------------------------------------------------


class _Table:
    """A TOML table whose keys are consumed one by one; leftovers are reported as unknown keys."""

    def __init__(self, data, where: str, source: str):
        if not isinstance(data, Mapping):
            raise SpecError(f"{source}: key {where!r} must be a table, got {type(data).__name__} {data!r}")
        self.data = dict(data)
        self.where = where
        self.source = source
        self.allowed: list[str] = []

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def take(self, name: str, kind: str, *, required: bool = True, default=None):
        self.allowed.append(name)
        if name not in self.data:
            if required:
                raise SpecError(f"{self.source}: required key {self.key(name)!r} is missing")
            return default
        return _check_type(self.data.pop(name), kind, self.key(name), self.source)

    def rest(self) -> dict:
        """Remaining keys, all returned (for free-form tables such as parameters)."""
        rest, self.data = self.data, {}
        return rest

    def finish(self):
        if self.data:
            unknown = ", ".join(repr(self.key(name)) for name in sorted(self.data))
            allowed = ", ".join(self.allowed)
            raise SpecError(f"{self.source}: unknown key(s) {unknown}; allowed keys here are: {allowed}")


_KINDS = {
    "bool": "true or false",
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "table": "a table",
    "list": "an array",
    "str_or_list": "a string or an array of strings",
}


def _check_type(value, kind: str, key: str, source: str):
    ok = {
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "table": isinstance(value, Mapping),
        "list": isinstance(value, list),
        "str_or_list": isinstance(value, str)
        or (isinstance(value, list) and all(isinstance(v, str) for v in value)),
    }[kind]
    if not ok:
        raise SpecError(f"{source}: key {key!r} must be {_KINDS[kind]}, got {type(value).__name__} {value!r}")
    if kind == "number":
        value = float(value)
        if not math.isfinite(value):
            raise SpecError(f"{source}: key {key!r} must be finite, got {value!r}")
    return value


def _positive(value, key: str, source: str):
    if value <= 0:
        raise SpecError(f"{source}: key {key!r} must be positive, got {value!r}")
    return value


def _parameter_table(data, where: str, source: str) -> dict[str, float]:
    table = _Table(data, where, source)
    return {
        name: _check_type(value, "number", table.key(name), source) for name, value in table.rest().items()
    }


def parse_spec(data: Mapping, source: str = "<spec>") -> DatasetSpec:
    """Build a :class:`DatasetSpec` from the TOML content, rejecting unknown keys and wrong types.

    Parameters
    ----------
    data : mapping
        The parsed TOML document (``tomllib.load`` output) or an equivalent dict.
    source : str
        Name used in error messages (the file path).

    Raises
    ------
    SpecError
        Naming the file, the key, the value received and what was expected.

    Examples
    --------
    >>> spec = parse_spec({
    ...     "name": "tiny", "system": "damped_pendulum", "title": "t", "summary": "s", "references": "r",
    ...     "license": "CC0-1.0", "product_version": "1",
    ...     "time": {"start": 0.0, "frames": 5, "save_interval": 0.1},
    ...     "solver": {"method": "dopri5", "rtol": 1e-8, "atol": 1e-8},
    ...     "seeds": {"rule": "spawn", "entropy": 1}, "scales": {"mini": {"train": 2}}})
    >>> spec.time.times().tolist()
    [0.0, 0.1, 0.2, 0.30000000000000004, 0.4]
    """
    top = _Table(data, "", source)
    name = top.take("name", "str")
    system = top.take("system", "str")
    title = top.take("title", "str")
    summary = top.take("summary", "str")
    references = top.take("references", "str_or_list")
    references = (references,) if isinstance(references, str) else tuple(references)
    license_ = top.take("license", "str")
    product_version = top.take("product_version", "str")
    samples_per_shard = _positive(
        top.take("samples_per_shard", "int", required=False, default=64), "samples_per_shard", source
    )
    dtype = top.take("dtype", "str", required=False, default="float32")
    if dtype not in STORAGE_DTYPES:
        raise SpecError(f"{source}: key 'dtype' must be one of {STORAGE_DTYPES}, got {dtype!r}")
    parameters = _parameter_table(
        top.take("parameters", "table", required=False, default={}), "parameters", source
    )
    system_options = dict(top.take("system_options", "table", required=False, default={}))
    initial_condition = top.take("initial_condition", "str", required=False)

    environments = []
    for index, entry in enumerate(top.take("environments", "list", required=False, default=[])):
        table = _Table(entry, f"environments[{index}]", source)
        environment_id = table.take("id", "int")
        if environment_id < 0:
            raise SpecError(
                f"{source}: key {table.key('id')!r} must be a non-negative integer, got {environment_id}"
            )
        adaptation = table.take("adaptation", "bool", required=False, default=False)
        options = dict(table.take("system_options", "table", required=False, default={}))
        environments.append(
            Environment(
                environment_id, _parameter_table(table.rest(), table.where, source), adaptation, options
            )
        )
    ids = [env.id for env in environments]
    if len(set(ids)) != len(ids):
        raise SpecError(f"{source}: key 'environments' must have distinct ids, got {ids}")
    if environments and all(env.adaptation for env in environments):
        raise SpecError(
            f"{source}: key 'environments' needs at least one environment without 'adaptation = true' "
            "(the train split comes from those)"
        )

    raw_time = top.take("time", "table")
    time = _parse_time(raw_time, "time", source)

    reference = None
    reference_data = top.take("reference", "table", required=False)
    if reference_data is not None:
        table = _Table(reference_data, "reference", source)
        function = table.take("function", "str")
        reference = ReferenceSettings(function, dict(table.rest()))

    solver_data = top.take("solver", "table", required=reference is None)
    if reference is not None and solver_data is not None:
        raise SpecError(
            f"{source}: a [reference] dataset is computed by its function, not integrated: remove the "
            f"[solver] table (got {dict(solver_data)!r})"
        )
    solver = None if solver_data is None else _parse_solver(solver_data, "solver", source)

    seeds_table = _Table(top.take("seeds", "table"), "seeds", source)
    rule = seeds_table.take("rule", "str")
    seeds = SeedSettings(
        rule=rule, entropy=seeds_table.take("entropy", "int", required=rule != "deterministic", default=0)
    )
    seeds_table.finish()
    if seeds.rule not in SEED_RULES:
        raise SpecError(f"{source}: key 'seeds.rule' must be one of {SEED_RULES}, got {seeds.rule!r}")
    if not 0 <= seeds.entropy < 2**63:
        raise SpecError(
            f"{source}: key 'seeds.entropy' must be an integer in [0, 2**63), got {seeds.entropy}"
        )
    if initial_condition is not None and reference is not None:
        raise SpecError(
            f"{source}: give 'initial_condition' or [reference], not both (a reference dataset has no "
            "initial-value solve)"
        )
    deterministic = initial_condition is not None or reference is not None
    if deterministic != (seeds.rule == "deterministic"):
        raise SpecError(
            f"{source}: key 'seeds.rule' = {seeds.rule!r}: the rule 'deterministic' goes with "
            "'initial_condition' or [reference] (no random draw), and only with them"
        )

    output_table = _Table(top.take("output", "table", required=False, default={}), "output", source)
    output = OutputSettings(
        spatial_stride=_positive(
            output_table.take("spatial_stride", "int", required=False, default=1),
            "output.spatial_stride",
            source,
        ),
        velocity=output_table.take("velocity", "bool", required=False, default=False),
    )
    output_table.finish()

    has_adaptation = any(env.adaptation for env in environments)
    scales = {}
    for scale_name, scale_data in top.take("scales", "table").items():
        table = _Table(scale_data, f"scales.{scale_name}", source)
        sizes = {}
        for split in SPLIT_IDS:
            size = table.take(split, "int", required=False)
            if size is not None:
                sizes[split] = _positive(size, table.key(split), source)
        shard = _positive(
            table.take("samples_per_shard", "int", required=False, default=samples_per_shard),
            table.key("samples_per_shard"),
            source,
        )
        options = dict(table.take("system_options", "table", required=False, default={}))
        scale_time_data = table.take("time", "table", required=False)
        scale_solver_data = table.take("solver", "table", required=False)
        table.finish()
        if "train" not in sizes:
            raise SpecError(
                f"{source}: table {table.where!r} must give a 'train' size (normalisation statistics come "
                f"from the train split), got keys {sorted(sizes)}"
            )
        adaptation_sizes = sorted(set(sizes) & set(ADAPTATION_SPLITS))
        if adaptation_sizes and not has_adaptation:
            raise SpecError(
                f"{source}: table {table.where!r} gives sizes for {adaptation_sizes} but no environment "
                "has 'adaptation = true'"
            )
        scale_time = None
        if scale_time_data is not None:
            merged = dict(raw_time)
            if {"end", "frames"} & set(scale_time_data):
                merged.pop("end", None)
                merged.pop("frames", None)
            merged.update(scale_time_data)
            scale_time = _parse_time(merged, f"scales.{scale_name}.time", source)
        scale_solver = None
        if scale_solver_data is not None:
            if solver_data is None:
                raise SpecError(
                    f"{source}: table 'scales.{scale_name}.solver' overrides a [solver] table the spec does "
                    "not have"
                )
            scale_solver = _parse_solver(
                {**solver_data, **scale_solver_data}, f"scales.{scale_name}.solver", source
            )
        scales[scale_name] = Scale(scale_name, sizes, shard, options, scale_time, scale_solver)
    if not scales:
        raise SpecError(f"{source}: table 'scales' must define at least one scale (e.g. [scales.mini])")
    top.finish()
    return DatasetSpec(
        name=name,
        system=system,
        title=title,
        summary=summary,
        references=references,
        license=license_,
        product_version=product_version,
        time=time,
        solver=solver,
        seeds=seeds,
        scales=scales,
        parameters=parameters,
        system_options=system_options,
        environments=tuple(environments),
        samples_per_shard=samples_per_shard,
        dtype=dtype,
        initial_condition=initial_condition,
        reference=reference,
        output=output,
        source=source,
    )


def _parse_solver(data, where: str, source: str) -> SolverSettings:
    """A ``[solver]`` table: ``method``, then ``rtol``/``atol`` (optional with ``internal_dt``)."""
    table = _Table(data, where, source)
    method = table.take("method", "str")
    internal_dt = table.take("internal_dt", "number", required=False)
    rtol = table.take("rtol", "number", required=internal_dt is None)
    atol = table.take("atol", "number", required=internal_dt is None)
    table.finish()
    for key, value in (("rtol", rtol), ("atol", atol), ("internal_dt", internal_dt)):
        if value is not None:
            _positive(value, f"{where}.{key}", source)
    return SolverSettings(method=method, rtol=rtol, atol=atol, internal_dt=internal_dt)


def _parse_time(data, where: str, source: str) -> TimeGrid:
    """A ``[time]`` table: ``start``, ``save_interval`` and ``end`` or ``frames`` (or both, consistent)."""
    time_table = _Table(data, where, source)
    start = time_table.take("start", "number")
    save_interval = _positive(time_table.take("save_interval", "number"), f"{where}.save_interval", source)
    end = time_table.take("end", "number", required=False)
    frames = time_table.take("frames", "int", required=False)
    time_table.finish()
    if end is None and frames is None:
        raise SpecError(f"{source}: table {where!r} needs 'end' or 'frames' (or both), got neither")
    if end is not None:
        counted = (end - start) / save_interval
        if abs(counted - round(counted)) > 1e-9 * max(1.0, counted) or round(counted) < 2:
            raise SpecError(
                f"{source}: key '{where}.end' = {end} must be start + k * save_interval with k >= 2 "
                f"(start {start}, save_interval {save_interval})"
            )
        if frames is not None and frames != round(counted):
            raise SpecError(
                f"{source}: key '{where}.frames' = {frames} disagrees with (end - start) / save_interval = "
                f"{round(counted)}"
            )
        frames = round(counted)
    if frames < 2:
        raise SpecError(f"{source}: key '{where}.frames' must be at least 2, got {frames}")
    return TimeGrid(start=start, save_interval=save_interval, frames=frames)


# -- finding specs ---------------------------------------------------------------------------------


def _spec_directory():
    """The directory of shipped specs: the ``physml.data.specs`` resources, else the checkout's datasets/."""
    try:
        directory = resources.files(_SPEC_PACKAGE)
        if directory.is_dir() and any(entry.name.endswith(".toml") for entry in directory.iterdir()):
            return directory
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    # A source checkout where the symbolic link could not be created (e.g. Windows without symlinks).
    return Path(__file__).resolve().parents[2] / "datasets"


def available_datasets() -> list[str]:
    """Names of the shipped dataset specs, sorted.

    Examples
    --------
    >>> "aphynity_pendulum" in available_datasets()
    True
    """
    directory = _spec_directory()
    if not directory.is_dir():
        return []
    return sorted(
        entry.name[: -len(".toml")] for entry in directory.iterdir() if entry.name.endswith(".toml")
    )


def dataset_card(name: str) -> str:
    """The Markdown card of a shipped dataset (``datasets/<name>.md``)."""
    card = _spec_directory() / f"{name}.md"
    if not card.is_file():
        raise ValueError(f"dataset {name!r} has no card; shipped datasets are {available_datasets()}")
    return card.read_text(encoding="utf-8")


def load_spec(name_or_path: str | os.PathLike) -> DatasetSpec:
    """Load a dataset spec by shipped name (``"aphynity_pendulum"``) or from a TOML file path.

    Parameters
    ----------
    name_or_path : str or path-like
        A name from :func:`available_datasets`, or the path of a ``.toml`` file.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones); :class:`SpecError` for a malformed spec.

    Examples
    --------
    >>> spec = load_spec("aphynity_pendulum")
    >>> spec.seeds.rule, spec.solver.method, spec.solver.rtol
    ('paper_index', 'dopri8', 1e-10)
    """
    text = os.fspath(name_or_path)
    path = Path(text)
    if text.endswith(".toml") or os.sep in text or path.is_file():
        if not path.is_file():
            raise ValueError(f"dataset spec file {text!r} does not exist")
        source, content = str(path), path.read_bytes()
    else:
        resource = _spec_directory() / f"{text}.toml"
        if not resource.is_file():
            known = ", ".join(available_datasets()) or "none"
            raise ValueError(f"unknown dataset {text!r}; known datasets are: {known}")
        source, content = f"datasets/{text}.toml", resource.read_bytes()
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{source}: not valid TOML: {error}") from None
    spec = parse_spec(data, source)
    return spec


def spec_from_config(config_json: str) -> DatasetSpec:
    """Rebuild the spec stored in a dataset's ``physml_config`` attribute (a JSON string)."""
    config = json.loads(config_json)
    return parse_spec(config["spec"], source=f"physml_config of {config.get('dataset', '?')}")
