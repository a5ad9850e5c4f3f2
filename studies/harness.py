"""What every study script shares: its command line, resumable runs, and the results contract.

A study is ``python studies/<name>.py --budget mini|cpu|paper [--seeds ...] [--threads N]``. It runs
*units* (one method on one dataset with one seed, say), each cached as JSON as soon as it finishes, so an
interrupted run resumes where it stopped; then it aggregates the units into rows and writes
``studies/results/<name>.json`` (the contract of ARCHITECTURE.md) and the markdown table rendered from
exactly that JSON.

Budgets
-------
``mini``  one seed of every method, a smoke run of at most ten minutes on two CPU cores;
``cpu``   the committed reproduction on this CPU (three seeds or more);
``paper`` the paper's schedule, a GPU job;
``smoke`` seconds-long, for the test suite only (not a result anyone should read).

The ``cpu`` budget writes ``<name>.json``/``.md``; other budgets write ``<name>_<budget>.json``/``.md`` so a
smoke or mini run never overwrites the committed results.

Examples
--------
A study's skeleton::

    from studies.harness import Study

    study = Study("my_study", description=__doc__, default_seeds={"mini": [0], "cpu": [0, 1, 2]})
    arguments = study.parse()               # --budget, --seeds, --threads, --output-dir, --fresh
    for seed in arguments.seeds:
        unit = study.run_unit(("icfm", "moons", seed), lambda: {"w2": train_and_measure(seed)})
        study.record("icfm", {"w2": unit["w2"]}, seed=seed, dataset="moons")
    study.finish(config={...}, paper={("icfm", "w2"): 0.30}, deviations=["..."])
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from physml.provenance import atomic_write_text, git_revision, machine_description

STUDIES_DIRECTORY = Path(__file__).resolve().parent
RESULTS_DIRECTORY = STUDIES_DIRECTORY / "results"
BUDGETS = ("smoke", "mini", "cpu", "paper")
DEFAULT_SEEDS = {"smoke": [0], "mini": [0], "cpu": [0, 1, 2], "paper": [0, 1, 2, 3, 4]}
# Keys a row may carry besides method/metric/mean/std/n/paper, to say which slice it belongs to.
GROUP_KEYS = ("dataset", "equation", "environment", "physics", "split")


def log(message: str) -> None:
    """Progress line on stderr with a UTC time stamp (stdout stays free for results)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {text}")
    return value


def summarize(values: Iterable[float]) -> dict:
    """``mean``, ``std`` (sample, 0 for one value) and ``n`` of the finite values; NaN-aware.

    Non-finite values (a diverged run) are counted in ``n_failed`` rather than silently averaged.
    """
    values = [float(value) for value in values]
    finite = [value for value in values if math.isfinite(value)]
    failed = len(values) - len(finite)
    if not finite:
        return {"mean": math.nan, "std": math.nan, "n": 0, "n_failed": failed}
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return {"mean": statistics.fmean(finite), "std": std, "n": len(finite), "n_failed": failed}


def checked_device(parser: argparse.ArgumentParser, name: str) -> torch.device:
    """``--device`` as a torch.device; an unknown or unavailable device stops with a message naming it."""
    try:
        device = torch.device(name)
    except RuntimeError:
        parser.error(f"--device must name a torch device such as cpu, cuda or cuda:1, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {name} asked for CUDA, but torch.cuda.is_available() is False here")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        parser.error(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device must be cpu or cuda[:index], got {name!r}")
    return device


class Study:
    """Command line, unit cache and results writer of one study script.

    Parameters
    ----------
    name : str
        The study's name: ``studies/<name>.py`` writes ``studies/results/<name>.json``.
    description : str
        Shown by ``--help``.
    default_seeds : dict, optional
        Seeds per budget when ``--seeds`` is not given (defaults: one seed for smoke/mini, three for
        cpu, five for paper).
    """

    def __init__(self, name: str, description: str = "", default_seeds: dict | None = None):
        self.name = name
        self.description = description
        self.default_seeds = {**DEFAULT_SEEDS, **(default_seeds or {})}
        self.rows: list[dict] = []
        self._per_seed: dict[tuple, dict] = {}
        self.started = time.perf_counter()
        self.arguments: argparse.Namespace | None = None
        self.missing_units: list[str] = []
        self.device = torch.device("cpu")  # --device, for studies whose parser offers it
        self.units_seconds = 0.0

    # ------------------------------------------------------------------ command line
    def parser(self, device: bool = False) -> argparse.ArgumentParser:
        """The study's command line; ``device=True`` adds ``--device`` for studies that move their models."""
        parser = argparse.ArgumentParser(
            prog=f"studies/{self.name}.py",
            description=self.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("--budget", choices=BUDGETS, default="mini",
                            help="mini: smoke run (<= 10 min); cpu: the committed results; paper: GPU job; "
                                 "smoke: seconds, for tests (default: mini)")
        parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=None,
                            help="random seeds (default: one for mini, three for cpu, five for paper)")
        parser.add_argument("--threads", type=positive_int, default=1,
                            help="torch intra-op threads (default 1: small tensors run far slower on 2)")
        parser.add_argument("--output-dir", type=Path, default=RESULTS_DIRECTORY,
                            help="where results, figures and the resume cache go (default studies/results)")
        parser.add_argument("--data-dir", type=Path, default=None,
                            help="where generated datasets are kept (default <output-dir>/data)")
        parser.add_argument("--fresh", action="store_true",
                            help="ignore finished units cached by an earlier run of this budget")
        parser.add_argument("--report-only", action="store_true",
                            help="compute nothing: write the results of the units already finished (e.g. "
                                 "while a long run is still going); the table states each row's seeds")
        if device:
            parser.add_argument("--device", default="cpu",
                                help="torch device the models train on, e.g. cuda or cuda:1 (default cpu); "
                                     "the paper budgets are GPU jobs")
        return parser

    def parse(self, argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None):
        """Parse the command line, set torch's thread count, create the output directories."""
        parser = parser or self.parser()
        arguments = parser.parse_args(argv)
        if arguments.fresh and arguments.report_only:
            parser.error("--fresh and --report-only exclude each other")
        if arguments.seeds is None:
            arguments.seeds = list(self.default_seeds[arguments.budget])
        if len(set(arguments.seeds)) != len(arguments.seeds):
            parser.error(f"--seeds must be distinct, got {arguments.seeds}")
        if arguments.data_dir is None:
            arguments.data_dir = arguments.output_dir / "data"
        self.device = torch.device("cpu")
        if getattr(arguments, "device", None) is not None:
            self.device = checked_device(parser, arguments.device)
        torch.set_num_threads(arguments.threads)
        arguments.output_dir.mkdir(parents=True, exist_ok=True)
        self.arguments = arguments
        self.argv = sys.argv[1:] if argv is None else list(argv)
        log(f"{self.name}: budget {arguments.budget}, seeds {arguments.seeds}, threads {arguments.threads}"
            + ("" if self.device.type == "cpu" else f", device {self.device}"))
        return arguments

    # ------------------------------------------------------------------ paths
    @property
    def stem(self) -> str:
        budget = self.arguments.budget
        return self.name if budget == "cpu" else f"{self.name}_{budget}"

    def path(self, suffix: str) -> Path:
        """``<output-dir>/<stem><suffix>``, e.g. ``path(".png")`` for the figure."""
        return self.arguments.output_dir / f"{self.stem}{suffix}"

    @property
    def cache_directory(self) -> Path:
        return self.arguments.output_dir / ".cache" / self.stem

    # ------------------------------------------------------------------ data
    def dataset(self, name: str, scale: str) -> Path:
        """Directory of dataset ``name`` at ``scale`` under ``--data-dir``, generated first if needed.

        An existing directory generated with the same configuration is reused; one with a different
        configuration (an edited spec) is regenerated, so a study never trains on stale data.
        """
        from physml.data import generate, up_to_date

        directory = up_to_date(name, scale, self.arguments.data_dir)
        if directory is not None:
            log(f"dataset {name} ({scale}): {directory}")
            return directory
        log(f"dataset {name} ({scale}): generating into {self.arguments.data_dir}")
        started = time.perf_counter()
        report = generate(name, scale, self.arguments.data_dir, overwrite=True)
        log(f"dataset {name} ({scale}): generated in {time.perf_counter() - started:.0f} s")
        return Path(report.directory)

    # ------------------------------------------------------------------ units
    def run_unit(self, key: tuple, compute: Callable[[], dict], config: dict | None = None) -> dict | None:
        """Return the cached outcome of ``key`` or compute it (a JSON-able dict) and cache it atomically.

        ``config`` (the unit's settings) is stored beside the outcome; a cached unit whose settings differ
        from the current ones is recomputed, so changing a budget never reuses stale numbers.  With
        ``--report-only`` an unfinished unit is not computed and ``None`` is returned: callers skip it.
        """
        label = "/".join(str(part) for part in key)
        digest = hashlib.sha1(label.encode()).hexdigest()[:10]
        safe = "".join(character if character.isalnum() or character in "-_." else "_" for character in label)
        path = self.cache_directory / f"{safe[:80]}_{digest}.json"
        settings = json.loads(json.dumps(config or {}, default=str))
        if path.exists() and not self.arguments.fresh:
            cached = json.loads(path.read_text())
            if cached.get("config") == settings:
                log(f"{label}: cached")
                self.units_seconds += float(cached["outcome"].get("unit_wall_time_s", 0.0))
                return cached["outcome"]
        if self.arguments.report_only:
            log(f"{label}: not finished yet, left out (--report-only)")
            self.missing_units.append(label)
            return None
        log(f"{label}: running")
        started = time.perf_counter()
        outcome = compute()
        elapsed = time.perf_counter() - started
        outcome = {**outcome, "unit_wall_time_s": elapsed}
        self.units_seconds += elapsed
        atomic_write_text(path, json.dumps({"key": list(map(str, key)), "config": settings,
                                            "outcome": outcome}, allow_nan=True) + "\n")
        log(f"{label}: done in {elapsed:.1f} s")
        return outcome

    # ------------------------------------------------------------------ rows
    def record(self, method: str, metrics: dict, *, seed: int, **group) -> None:
        """Add one seed's value of each metric for ``method`` in the slice given by ``group`` keywords."""
        unknown = set(group) - set(GROUP_KEYS)
        if unknown:
            raise ValueError(f"group keys must be among {GROUP_KEYS}, got {sorted(unknown)}")
        for metric, value in metrics.items():
            key = (method, metric, tuple(sorted(group.items())))
            self._per_seed.setdefault(key, {})[seed] = float(value)

    def finish(self, *, config: dict, paper: dict | None = None, deviations: Iterable[str] = (),
               notes: Iterable[str] = (), targets: Iterable[dict] = (), figures: Iterable[str] = (),
               render_extra: Callable[[dict], list[str]] | None = None,
               reference_label: str = "paper") -> dict:
        """Aggregate the recorded values, write the JSON then the markdown rendered from it.

        Parameters
        ----------
        config : dict
            The settings of this budget (steps, sizes, grids, ...), stored in the JSON.
        paper : dict, optional
            ``{(method, metric) or (method, metric, group_value): number}``: the paper's value per row.
        deviations : iterable of str
            Every way this run differs from the paper's setup.
        targets : iterable of dict
            ``{"target": text, "met": bool, "measured": text, "why": text}`` rows for the issue's targets.
        figures : iterable of str
            File names (relative to the output directory) of the figures this run drew.
        render_extra : callable, optional
            ``data -> list of markdown lines`` appended to the rendered table (study-specific sections).
        reference_label : str
            Column title of the reference values (``"paper"``; e.g. ``"baseline"`` when they are our own
            measurements of a peer library rather than a paper's table).
        """
        paper = paper or {}
        rows = []
        for (method, metric, group), per_seed in self._per_seed.items():
            group = dict(group)
            seeds = sorted(per_seed)
            summary = summarize(per_seed[seed] for seed in seeds)
            reference = paper.get((method, metric, *group.values()), paper.get((method, metric)))
            rows.append({"method": method, "metric": metric, **summary, "paper": reference,
                         **group, "seeds": seeds, "values": [per_seed[seed] for seed in seeds]})
        arguments = self.arguments
        data = {
            "study": self.name,
            "budget": arguments.budget,
            "seeds": arguments.seeds,
            "wall_time_s": time.perf_counter() - self.started,
            # Summed over every unit in the table, whichever run computed it: the cost of the whole budget
            # even when it was resumed from the cache across several runs.
            "units_compute_seconds": self.units_seconds,
            "machine": machine_description(arguments.threads),
            "git_sha": git_revision(),
            "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            # The command that reproduces the table: --report-only only re-renders it from the cache.
            "command": " ".join([f"python studies/{self.name}.py",
                                 *(part for part in self.argv if part != "--report-only")]),
            "report_only": bool(arguments.report_only),
            "config": config,
            "deviations": list(deviations),
            "notes": list(notes),
            "targets": list(targets),
            "figures": list(figures),
            "reference_label": reference_label,
            "unfinished_units": list(self.missing_units),
            "results": rows,
        }
        text = json.dumps(data, indent=1, allow_nan=True, default=str)
        atomic_write_text(self.path(".json"), text + "\n")
        reloaded = json.loads(text)
        lines = render_markdown(reloaded)
        if render_extra is not None:
            lines += render_extra(reloaded)
        atomic_write_text(self.path(".md"), "\n".join(lines) + "\n")
        log(f"wrote {self.path('.json')} and {self.path('.md')}")
        return reloaded


# ====================================================================== markdown


def format_value(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e4 or magnitude < 1e-3:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def format_cell(row: dict) -> str:
    if row["n"] == 0:
        return f"failed ({row['n_failed']})"
    text = format_value(row["mean"])
    if row["n"] > 1:
        text += f" ± {format_value(row['std'], 2)}"
    if row.get("n_failed"):
        text += f" ({row['n_failed']} failed)"
    return text


def markdown_table(headers: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def render_markdown(data: dict) -> list[str]:
    """The study's tables from its JSON: one table per slice, methods as rows, metrics as columns.

    Each cell is ``mean ± std`` over seeds; a column ``paper`` follows every metric that has a paper value.
    """
    machine = data["machine"]
    lines = [
        f"# Study `{data['study']}` — budget `{data['budget']}`",
        "",
        f"Generated from `{data['study']}.json` by `studies/harness.py`; do not edit by hand.",
        "",
        f"- command: `{data['command']}`",
        f"- seeds: {data['seeds']}; compute time {data.get('units_compute_seconds', 0.0) / 60:.1f} min "
        f"summed over the table's units (across resumed runs); this run's wall time "
        f"{data['wall_time_s'] / 60:.1f} min" + (" (re-rendered from the unit cache with `--report-only`)"
                                                  if data.get("report_only") else ""),
        f"- machine: {machine['cpu_model']}, {machine['usable_cores']} usable cores, torch "
        f"{machine.get('torch')}, {machine['torch_threads']} thread(s); git {data['git_sha'][:10]}; "
        f"{data['date_utc']} UTC",
        "",
    ]
    if data.get("unfinished_units"):
        lines += [f"> **Partial results** (`--report-only`): {len(data['unfinished_units'])} unit(s) of this "
                  "budget had not finished when this table was written and are left out; each row's `n` "
                  "counts the seeds it holds. Unfinished: " + ", ".join(f"`{unit}`" for unit in
                                                                       data["unfinished_units"]), ""]
    rows = data["results"]
    group_keys = [key for key in GROUP_KEYS if any(key in row for row in rows)]
    slices: dict[tuple, list[dict]] = {}
    for row in rows:
        slices.setdefault(tuple(row.get(key) for key in group_keys), []).append(row)
    for group_values, slice_rows in slices.items():
        if group_keys:
            title = ", ".join(f"{key} `{value}`" for key, value in zip(group_keys, group_values, strict=True)
                              if value is not None)
            lines += [f"## {title}", ""]
        metrics = list(dict.fromkeys(row["metric"] for row in slice_rows))
        methods = list(dict.fromkeys(row["method"] for row in slice_rows))
        with_paper = {metric for metric in metrics
                      if any(row["paper"] is not None for row in slice_rows if row["metric"] == metric)}
        headers = ["method"]
        for metric in metrics:
            headers.append(f"`{metric}`")
            if metric in with_paper:
                headers.append(data.get("reference_label", "paper"))
        body = []
        lookup = {(row["method"], row["metric"]): row for row in slice_rows}
        for method in methods:
            cells = [f"`{method}`"]
            for metric in metrics:
                row = lookup.get((method, metric))
                cells.append("–" if row is None else format_cell(row))
                if metric in with_paper:
                    cells.append("–" if row is None else format_value(row["paper"]))
            body.append(cells)
        lines += markdown_table(headers, body) + [""]
    if data.get("targets"):
        lines += ["## Targets", ""]
        if data["budget"] != "cpu":
            lines += [f"The targets are set for the committed `cpu` budget; at the `{data['budget']}` budget "
                      "they are evaluated for orientation only.", ""]
        lines += markdown_table(
            ["target", "measured", "result"],
            [[target["target"], target["measured"], "met" if target["met"] else "**missed**"]
             for target in data["targets"]],
        )
        lines += [""]
        missed = [target for target in data["targets"] if not target["met"] and target.get("why")]
        for target in missed:
            lines += [f"- **{target['target']}** missed: {target['why']}"]
        if missed:
            lines += [""]
    if data.get("deviations"):
        lines += ["## Deviations from the paper", ""] + [f"- {text}" for text in data["deviations"]] + [""]
    if data.get("notes"):
        lines += ["## Notes", ""] + [f"- {text}" for text in data["notes"]] + [""]
    if data.get("figures"):
        lines += ["## Figures", ""] + [f"![{name}]({name})" for name in data["figures"]] + [""]
    lines += ["## Configuration", "", "```json", json.dumps(data["config"], indent=1), "```"]
    return lines


def mean_of(data_or_rows, method: str, metric: str, **group) -> float:
    """The mean of one row of a results JSON (or of its ``results`` list); KeyError when absent."""
    rows = data_or_rows["results"] if isinstance(data_or_rows, dict) else data_or_rows
    for row in rows:
        if row["method"] == method and row["metric"] == metric and all(
            row.get(key) == value for key, value in group.items()
        ):
            return row["mean"]
    raise KeyError(f"no row for method {method!r}, metric {metric!r}, {group}")
