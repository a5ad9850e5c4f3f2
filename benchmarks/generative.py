"""Generative-model benchmark: physml against torchcfm and torchsde on the same work, in one process.

Two workloads:

fm. One flow-matching training step, 8gaussians -> moons, I-CFM with sigma = 0.1, torchcfm's MLP
    (3 hidden layers of 64, SELU, time as an extra input), batch 256, Adam 1e-3: torchcfm 1.0.7's
    tutorial loop (``sample_8gaussians``, ``sample_moons``, ``ConditionalFlowMatcher``) against
    ``physml.generative.FlowMatchingModel.fit``. Timed as blocks of ``steps`` steps, reported per step.
    Context rows: torchcfm's loop fed by physml's samplers (to separate data drawing from the rest), and
    OT-CFM (exact minibatch OT, POT) both ways.
sde. VP-SDE (beta in [0.1, 20]) reverse-time Euler–Maruyama sampling of 2 000 points in 1 000 steps from
    t = 1 to 1e-3 with the same trained score network (3 x 128 SiLU): ``torchsde.sdeint`` with its
    default Brownian motion, time negated as in torchsde's own ``examples/cont_ddpm.py`` (torchsde needs
    increasing time), against ``physml.generative.reverse_sde_sample`` (``physml.sdeint`` with decreasing
    time). Context rows: torchsde given ``BrownianInterval(dt=...)`` (its documented speed-up), and a
    hand-written Euler–Maruyama loop. The samples of every variant are compared to each other (W2) to
    show they do the same work.

Protocol (as ``benchmarks/solvers.py``): one warm-up run per variant, then ``repeats`` round-robin rounds;
medians. Peers: ``pip install --no-deps torchcfm==1.0.7 torchdyn==1.0.6`` (their own dependency lists
would replace the CPU torch with a CUDA build); torchsde is a physml dependency.

Run ``OMP_NUM_THREADS=1 python benchmarks/generative.py --threads 1`` (``--quick`` for a smoke run);
results in ``benchmarks/results/generative.{json,md}``.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY_ROOT))

import torch  # noqa: E402
import torchsde  # noqa: E402

from benchmarks.solvers import (  # noqa: E402
    Variant,
    attach_ratios,
    base_row,
    benchmark_parser,
    format_load,
    format_number,
    format_ratio,
    format_seconds,
    log,
    markdown_table,
    parse_benchmark_arguments,
    time_variants,
    write_report,
)
from physml.generative import VPSDE, FlowMatchingModel, ScoreBasedModel, toy  # noqa: E402
from physml.generative.samplers import reverse_sde_sample  # noqa: E402
from physml.metrics import wasserstein2_distance  # noqa: E402
from physml.provenance import atomic_write_text, git_revision, machine_description  # noqa: E402

WORKLOADS = ("fm", "sde")
DEFAULT_OUTPUT = REPOSITORY_ROOT / "benchmarks" / "results" / "generative.md"
MINIMUM_REPEATS = 3
TARGETS = {
    "fm": ("flow-matching training step >= 1.5x faster than torchcfm's", "torchcfm_icfm", 1 / 1.5),
    "sde": ("VP-SDE Euler-Maruyama sampling (2 000 points, 1 000 steps) >= 5x faster than torchsde's "
            "default", "torchsde_default", 1 / 5),
}


def workload_parameters(quick: bool) -> dict:
    return {
        "fm": {"description": "I-CFM training steps, 8gaussians -> moons, MLP 3 x 64 SELU, batch 256",
               "steps": 20 if quick else 300, "batch_size": 256, "sigma": 0.1, "learning_rate": 1e-3,
               "ot_steps": 10 if quick else 100},
        "sde": {"description": "VP-SDE reverse Euler-Maruyama, 2 000 points, 1 000 steps, MLP 3 x 128 SiLU",
                "n": 200 if quick else 2000, "steps": 50 if quick else 1000, "epsilon": 1e-3,
                "beta_min": 0.1, "beta_max": 20.0, "training_steps": 50 if quick else 1500},
    }


# ============================================================================ fm


def import_torchcfm():
    try:
        from torchcfm.conditional_flow_matching import (
            ConditionalFlowMatcher,
            ExactOptimalTransportConditionalFlowMatcher,
        )
        from torchcfm.models.models import MLP
        from torchcfm.utils import sample_8gaussians, sample_moons
    except ImportError as error:
        raise SystemExit(
            "benchmarks/generative.py needs torchcfm: pip install --no-deps torchcfm==1.0.7 torchdyn==1.0.6"
            f" ({error})"
        ) from error
    return ConditionalFlowMatcher, ExactOptimalTransportConditionalFlowMatcher, MLP, sample_8gaussians, \
        sample_moons


def workload_flow_matching(parameters: dict, repeats: int) -> dict:
    matcher_class, ot_matcher_class, mlp_class, sample_8gaussians, sample_moons = import_torchcfm()
    batch, sigma, rate = parameters["batch_size"], parameters["sigma"], parameters["learning_rate"]

    def torchcfm_loop(matcher, steps, draw_source, draw_target):
        def run():
            torch.manual_seed(0)
            model = mlp_class(dim=2, time_varying=True, w=64)
            optimizer = torch.optim.Adam(model.parameters(), lr=rate)
            for _ in range(steps):
                optimizer.zero_grad()
                x0, x1 = draw_source(batch), draw_target(batch)
                t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
                vt = model(torch.cat([xt, t[:, None]], dim=-1))
                loss = torch.mean((vt - ut) ** 2)
                loss.backward()
                optimizer.step()
            return {"final_loss": loss.item(), "steps": steps}
        return run

    def physml_loop(path, steps):
        def run():
            generator = torch.Generator().manual_seed(0)
            model = FlowMatchingModel(path, sigma=sigma, source=toy.eight_gaussians,
                                      hidden_sizes=(64, 64, 64),
                                      activation="selu", steps=steps, batch_size=batch, learning_rate=rate)
            model.fit(toy.moons, generator=generator)
            return {"final_loss": model.loss_history_[-1], "steps": steps}
        return run

    physml_generator = torch.Generator().manual_seed(1)
    steps, ot_steps = parameters["steps"], parameters["ot_steps"]
    variants = [
        Variant("physml_icfm", "physml FlowMatchingModel (I-CFM)", "physml",
                physml_loop("independent", steps),
                role="physml"),
        Variant("torchcfm_icfm", "torchcfm tutorial loop (I-CFM)", "torchcfm",
                torchcfm_loop(matcher_class(sigma=sigma), steps, sample_8gaussians, sample_moons),
                counterpart="physml_icfm"),
        Variant("torchcfm_icfm_physml_data", "torchcfm loop fed by physml's samplers", "torchcfm",
                torchcfm_loop(matcher_class(sigma=sigma), steps,
                              lambda n: toy.eight_gaussians(n, generator=physml_generator),
                              lambda n: toy.moons(n, generator=physml_generator)),
                role="context", counterpart="physml_icfm"),
        Variant("physml_otcfm", "physml FlowMatchingModel (OT-CFM)", "physml",
                physml_loop("optimal_transport", ot_steps), role="physml"),
        Variant("torchcfm_otcfm", "torchcfm loop (OT-CFM)", "torchcfm",
                torchcfm_loop(ot_matcher_class(sigma=sigma), ot_steps, sample_8gaussians, sample_moons),
                role="context", counterpart="physml_otcfm"),
    ]
    timings = time_variants("fm", variants, repeats)
    rows = []
    for variant in variants:
        row = base_row(variant, timings[variant.key])
        count = timings[variant.key]["outcome"]["steps"]
        row.update({"steps": count, "median_per_step_s": row["median_s"] / count,
                    "final_loss": timings[variant.key]["outcome"]["final_loss"]})
        rows.append(row)
    attach_ratios(rows, "median_per_step_s")
    return {"description": parameters["description"], "rows": rows}


# ============================================================================ sde


class NegatedTimeReverseSDE(torch.nn.Module):
    """The reverse-time VP-SDE in torchsde's increasing time s = -t (torchsde's cont_ddpm pattern)."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, score_function, sde: VPSDE):
        super().__init__()
        self.score_function, self.sde = score_function, sde

    def f(self, s, y):
        t = -s
        drift, diffusion = self.sde.drift(t, y), self.sde.diffusion(t)
        return -(drift - diffusion.square() * self.score_function(t, y))

    def g(self, s, y):
        return self.sde.diffusion(-s).expand_as(y)


def hand_written_euler_maruyama(score_function, sde, prior, times, generator):
    x = prior
    for start, stop in zip(times[:-1], times[1:], strict=True):
        step = stop - start  # negative
        t = torch.tensor(start, dtype=x.dtype)
        diffusion = sde.diffusion(t)
        drift = sde.drift(t, x) - diffusion.square() * score_function(t, x)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = x + drift * step + diffusion * (-step) ** 0.5 * noise
    return x


class GaussianMixtureScore:
    """Exact score of the VP-SDE marginals of an isotropic Gaussian mixture (closed form, no network).

    With one component this is the cheapest possible score, so a sampler's own overhead shows; with
    torchcfm's eight Gaussians it costs about as much as a small network.
    """

    def __init__(self, sde: VPSDE, centres: torch.Tensor, variance: float):
        self.sde, self.centres, self.data_variance = sde, centres, variance

    def __call__(self, t, x):
        t = torch.as_tensor(t, dtype=x.dtype)
        mean, variance = self.sde.mean_coefficient(t), self.sde.variance(t)
        variance = mean.square() * self.data_variance + variance
        if self.centres.shape[0] == 1:
            return -(x - mean * self.centres) / variance
        difference = x[:, None, :] - mean * self.centres[None]
        responsibilities = torch.softmax(-difference.square().sum(-1) / (2 * variance), dim=1)
        return -(responsibilities[..., None] * difference).sum(1) / variance


def score_models(parameters: dict, sde: VPSDE) -> dict:
    """The three score functions of the sde workload, with samplers for their target distributions."""
    directions = torch.tensor(toy.EIGHT_GAUSSIAN_DIRECTIONS, dtype=torch.float32)
    network_model = ScoreBasedModel(sde, hidden_sizes=(128, 128, 128), activation="silu",
                                    steps=parameters["training_steps"], epsilon=parameters["epsilon"])
    network_model.fit(toy.moons, generator=torch.Generator().manual_seed(0))
    for parameter in network_model.network_.parameters():
        parameter.requires_grad_(False)
    centre = torch.tensor([[1.0, -1.0]])

    def gaussian_target(n, generator):
        return centre + 0.5 * torch.randn(n, 2, generator=generator)

    return {
        "gaussian_exact": ("closed-form score of a Gaussian N((1, -1), 0.25 I)",
                           GaussianMixtureScore(sde, centre, 0.25), gaussian_target),
        "mixture_exact": ("closed-form score of torchcfm's 8 Gaussians",
                          GaussianMixtureScore(sde, 5.0 * directions, 0.1**0.5),
                          lambda n, generator: toy.eight_gaussians(n, generator=generator)),
        "network": (f"trained score network (3 x 128 SiLU MLP, {parameters['training_steps']} steps on "
                    "moons)",
                    network_model.score_function, lambda n, generator: toy.moons(n, generator=generator)),
    }


def workload_reverse_sde(parameters: dict, repeats: int) -> dict:
    sde = VPSDE(parameters["beta_min"], parameters["beta_max"])
    n, steps, epsilon = parameters["n"], parameters["steps"], parameters["epsilon"]
    prior = torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
    step_size = (1.0 - epsilon) / steps
    times = torch.linspace(1.0, epsilon, steps + 1, dtype=torch.float64).tolist()
    scores = {}
    for score_key, (description, score, target) in score_models(parameters, sde).items():

        def physml_run(score=score):
            with torch.no_grad():
                result = reverse_sde_sample(score, sde, prior, steps=steps, epsilon=epsilon, denoise=False,
                                            generator=torch.Generator().manual_seed(2))
            return {"samples": result.samples, "nfe": result.nfe}

        def torchsde_run(with_dt: bool, score=score):
            def run():
                reverse = NegatedTimeReverseSDE(score, sde)
                bm = None
                if with_dt:
                    bm = torchsde.BrownianInterval(t0=-1.0, t1=-epsilon, size=prior.shape, dt=step_size,
                                                   entropy=2)
                with torch.no_grad():
                    ys = torchsde.sdeint(reverse, prior, torch.tensor([-1.0, -epsilon]), method="euler",
                                         dt=step_size, bm=bm)
                return {"samples": ys[-1]}
            return run

        def hand_run(score=score):
            with torch.no_grad():
                return {"samples": hand_written_euler_maruyama(score, sde, prior, times,
                                                               torch.Generator().manual_seed(3))}

        variants = [
            Variant("physml_reverse_sde", "physml reverse_sde_sample (physml.sdeint, t decreasing)",
                    "physml", physml_run, role="physml"),
            Variant("torchsde_default", "torchsde.sdeint, default Brownian motion, time negated", "torchsde",
                    torchsde_run(False), counterpart="physml_reverse_sde"),
            Variant("torchsde_interval_dt", "torchsde.sdeint with BrownianInterval(dt=...)", "torchsde",
                    torchsde_run(True), role="context", counterpart="physml_reverse_sde"),
            Variant("hand_written", "hand-written Euler-Maruyama loop", "hand-written", hand_run,
                    role="context", counterpart="physml_reverse_sde"),
        ]
        timings = time_variants(f"sde/{score_key}", variants, repeats)
        reference = target(n, torch.Generator().manual_seed(4))
        physml_samples = timings["physml_reverse_sde"]["outcome"]["samples"].double()
        rows = []
        for variant in variants:
            row = base_row(variant, timings[variant.key])
            samples = timings[variant.key]["outcome"]["samples"].double()
            row["w2_to_target"] = wasserstein2_distance(samples, reference.double())
            row["w2_to_physml"] = wasserstein2_distance(samples, physml_samples)
            row["nfe"] = timings[variant.key]["outcome"].get("nfe")
            rows.append(row)
        attach_ratios(rows)
        second_draw = target(n, torch.Generator().manual_seed(5))
        floor = wasserstein2_distance(reference.double(), second_draw.double())
        scores[score_key] = {"description": description, "rows": rows, "w2_floor": floor}
    return {"description": parameters["description"], "scores": scores}


# ============================================================================ report


def explain_sde_miss(score: dict) -> str:
    """Why a score model's ratio misses 5x: the work no sampler avoids (score, noise, update) dominates."""
    rows = {row["key"]: row for row in score["rows"]}
    ours, hand = rows["physml_reverse_sde"]["median_s"], rows["hand_written"]["median_s"]
    peer = rows["torchsde_default"]["median_s"]
    floor = min(ours, hand)
    return (f"physml takes {format_seconds(ours)} and a bare hand-written Euler-Maruyama loop with the same "
            f"score {format_seconds(hand)}, against torchsde's {format_seconds(peer)}: with this score even the "
            f"faster of the two is only {peer / floor:.2f}x faster than torchsde, because evaluating the score, "
            "drawing the noise and the update itself are the work every sampler must do; torchsde's overhead "
            f"(Brownian-interval bookkeeping, about {format_seconds(peer - floor)} over "
            f"{score['rows'][0]['nfe']} steps) is all there is to remove, and physml removes it.")


def evaluate_targets(workloads: dict) -> list[dict]:
    targets = []
    for key, (text, peer, threshold) in TARGETS.items():
        if key not in workloads:
            continue
        groups = ({"": workloads[key]} if key == "fm"
                  else {f" — {name}": score for name, score in workloads[key]["scores"].items()})
        for suffix, group in groups.items():
            row = next(row for row in group["rows"] if row["key"] == peer)
            ratio = row["physml_over_row"]
            target = {"workload": key, "target": text + suffix, "measured": ratio, "threshold": threshold,
                      "met": bool(ratio <= threshold), "speedup": 1 / ratio}
            if not target["met"] and key == "sde":
                target["why_missed"] = explain_sde_miss(group)
            targets.append(target)
    return targets


def render_markdown(data: dict) -> str:
    machine = data["machine"]
    lines = ["# Generative-model benchmark: physml against torchcfm and torchsde", ""]
    if data["quick"]:
        lines += ["> **Quick smoke run (`--quick`)**: not the benchmark.", ""]
    lines += [
        f"Generated by `benchmarks/generative.py` from `{data['json_name']}` on {data['date_utc']} "
        f"(git {data['git_sha'][:10]}); wall time {data['wall_time_s']:.0f} s. Command: `{data['command']}`",
        "",
        f"Machine: {machine['cpu_model']}, {machine['usable_cores']} usable cores, torch {machine['torch']}, "
        f"{machine['torch_threads']} thread(s); torchcfm {machine.get('torchcfm')}, torchsde "
        f"{machine.get('torchsde')}, POT {machine.get('POT')}; load average start "
        f"{format_load(machine.get('load_average_start'))}, end "
        f"{format_load(machine.get('load_average_end'))}.",
        "",
        f"Protocol: one warm-up run per variant, then {data['protocol']['repeats']} round-robin rounds; "
        "medians. `physml / row` is physml's median over the row's (below 1: physml is faster).",
        "",
        "## Targets",
        "",
    ]
    lines += markdown_table(
        ["target", "physml / peer", "speed-up", "result"],
        [[target["target"], format_ratio(target["measured"]), f"{target['speedup']:.1f}x",
          "met" if target["met"] else "**missed**"] for target in data["targets"]],
    )
    if "fm" in data["workloads"]:
        workload = data["workloads"]["fm"]
        lines += ["", f"## fm — {workload['description']}", ""]
        lines += markdown_table(
            ["variant", "role", "steps", "median / step", "physml / row", "final loss"],
            [[row["label"], row["role"], str(row["steps"]), format_seconds(row["median_per_step_s"]),
              format_ratio(row["physml_over_row"]), format_number(row["final_loss"])]
             for row in workload["rows"]],
        )
        lines += ["", "torchcfm's `sample_8gaussians` builds its batch with a Python loop over the samples; "
                  "the "
                  "context row feeds torchcfm's loop with physml's vectorised samplers to show how much of "
                  "the gap is data drawing. OT-CFM rows are dominated by POT's exact EMD in both."]
    if "sde" in data["workloads"]:
        workload = data["workloads"]["sde"]
        lines += ["", f"## sde — {workload['description']}", "",
                  "The same sampling with three score functions, from free to network-dominated. Every "
                  "variant uses the same score and prior draw; only the Brownian increments differ, so the "
                  "W2 columns show that they do the same work (W2 to the target against the finite-sample "
                  "floor of two independent target draws)."]
        for name, score in workload["scores"].items():
            lines += ["", f"### {name}: {score['description']}", ""]
            lines += markdown_table(
                ["variant", "role", "median", "physml / row", "W2 to target", "W2 to physml's samples"],
                [[row["label"], row["role"], format_seconds(row["median_s"]),
                  format_ratio(row["physml_over_row"]), format_number(row["w2_to_target"]),
                  format_number(row["w2_to_physml"])] for row in score["rows"]],
            )
            lines += ["", f"Finite-sample W2 floor: {format_number(score['w2_floor'])}."]
    missed = [target for target in data["targets"] if not target["met"] and target.get("why_missed")]
    if missed:
        lines += ["", "## Why the missed targets are missed", ""]
        lines += [f"- **{target['target']}**: {target['why_missed']}" for target in missed]
    return "\n".join(lines) + "\n"


def parse_arguments(argv):
    parser = benchmark_parser(__doc__, WORKLOADS, DEFAULT_OUTPUT, 5, MINIMUM_REPEATS)
    return parse_benchmark_arguments(parser, argv, WORKLOADS, MINIMUM_REPEATS)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    output, json_path = arguments.output, arguments.output.with_suffix(".json")
    if arguments.from_json is not None:
        atomic_write_text(output, render_markdown(json.loads(arguments.from_json.read_text())))
        return 0
    torch.set_num_threads(arguments.threads)
    parameters = workload_parameters(arguments.quick)
    machine = machine_description(arguments.threads, packages=("torchcfm", "torchsde", "torchdyn", "POT"))
    started = time.perf_counter()
    workloads = {}
    functions = {"fm": workload_flow_matching, "sde": workload_reverse_sde}
    for key in arguments.only:
        log(f"workload {key}: {parameters[key]['description']}")
        workloads[key] = functions[key](parameters[key], arguments.repeats)
    machine["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    data = {
        "benchmark": "generative",
        "quick": arguments.quick,
        "command": " ".join(["python benchmarks/generative.py", *(sys.argv[1:] if argv is None else argv)]),
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "git_sha": git_revision(REPOSITORY_ROOT),
        "wall_time_s": time.perf_counter() - started,
        "json_name": json_path.name,
        "machine": machine,
        "protocol": {"warmup_runs": 1, "repeats": arguments.repeats, "order": "round-robin",
                     "statistic": "median"},
        "config": parameters,
        "workloads": workloads,
    }
    data["targets"] = evaluate_targets(workloads)
    write_report(data, json_path, output, render_markdown)
    for target in data["targets"]:
        log(f"target {target['workload']}: {target['target']}: physml/peer {target['measured']:.3f} "
            f"({target['speedup']:.1f}x) -> {'met' if target['met'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
