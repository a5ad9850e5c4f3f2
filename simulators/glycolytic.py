"""Glycolytic oscillator of Daniels & Nemenman (2015), in the CoDA setup: seven species S1…S7."""

from __future__ import annotations

import torch

from physml.systems import ParameterSpec, System, Variable, check_count


class GlycolyticOscillator(System):
    """Yeast glycolysis model with seven species, as used by CoDA (``g_osci``).

    With r = k1 S1 S6 / (1 + (S6/K1)^q):

    - S1' = J0 − r
    - S2' = 2r − k2 S2 (N − S5) − k6 S2 S5
    - S3' = k2 S2 (N − S5) − k3 S3 (A − S6)
    - S4' = k3 S3 (A − S6) − k4 S4 S5 − κ (S4 − S7)
    - S5' = k2 S2 (N − S5) − k4 S4 S5 − k6 S2 S5
    - S6' = −2r + 2 k3 S3 (A − S6) − k5 S6
    - S7' = ψ κ (S4 − S7) − k S7

    Parameter names are the symbols of the CoDA code.  CoDA varies k1 and K1 across environments
    (:attr:`CODA_ENVIRONMENTS`, :attr:`CODA_ADAPTATION_ENVIRONMENTS`); the defaults here are its first
    training environment (k1 = 100, K1 = 1) and its fixed values for the others.  The project reference
    gives no physical units for concentrations or time, so all are declared dimensionless ("1").

    Initial conditions are uniform per species on the CoDA ranges (:attr:`INITIAL_CONDITION_RANGES`).

    Examples
    --------
    >>> import torch
    >>> system = GlycolyticOscillator(k1=[100.0, 90.0], K1=[1.0, 0.75])
    >>> y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    >>> system.simulate(y0, torch.linspace(0.0, 1.0, 21)).ys.shape
    torch.Size([21, 2, 7])
    """

    name = "glycolytic_oscillator"
    title = "Glycolytic oscillator (Daniels & Nemenman)"
    state_variables = tuple(
        Variable(f"S{index}", "1", f"concentration of species S{index}: {meaning}")
        for index, meaning in enumerate(
            ["glucose", "glyceraldehyde-3-phosphate and dihydroxyacetone phosphate pool",
             "1,3-bisphosphoglycerate", "cytosolic pyruvate and acetaldehyde pool", "NADH", "ATP",
             "extracellular pyruvate and acetaldehyde pool"],
            start=1,
        )
    )
    parameter_specs = (
        ParameterSpec("J0", "1", 2.5, "glucose influx J0"),
        ParameterSpec("k1", "1", 100.0, "rate constant k1 of the ATP-inhibited glucose uptake"),
        ParameterSpec("k2", "1", 6.0, "rate constant k2"),
        ParameterSpec("k3", "1", 16.0, "rate constant k3"),
        ParameterSpec("k4", "1", 100.0, "rate constant k4"),
        ParameterSpec("k5", "1", 1.28, "ATP consumption rate k5"),
        ParameterSpec("k6", "1", 12.0, "rate constant k6"),
        ParameterSpec("K1", "1", 1.0, "ATP inhibition threshold K1"),
        ParameterSpec("q", "1", 4.0, "Hill coefficient q of the ATP inhibition"),
        ParameterSpec("N", "1", 1.0, "total NAD+/NADH pool N"),
        ParameterSpec("A", "1", 4.0, "total ATP/ADP pool A"),
        ParameterSpec("kappa", "1", 13.0, "membrane exchange rate κ of the pyruvate/acetaldehyde pool"),
        ParameterSpec("psi", "1", 0.1, "ratio ψ of cell volume to extracellular volume"),
        ParameterSpec("k", "1", 1.8, "extracellular degradation rate k"),
    )
    references = (
        "Daniels & Nemenman (2015), Efficient inference of parsimonious phenomenological models of cellular "
        "dynamics using S-systems and alternating regression, PLoS ONE; Kirchmeyer et al. (2022), CoDA, ICML"
    )

    #: CoDA training environments: k1 in {100, 90, 80} × K1 in {1, 0.75, 0.5}.
    CODA_ENVIRONMENTS = tuple({"k1": k1, "K1": K1} for k1 in (100.0, 90.0, 80.0) for K1 in (1.0, 0.75, 0.5))
    #: CoDA adaptation environments: k1 in {85, 95} × K1 in {0.625, 0.875}.
    CODA_ADAPTATION_ENVIRONMENTS = tuple({"k1": k1, "K1": K1} for k1 in (85.0, 95.0) for K1 in (0.625, 0.875))
    #: Uniform initial-condition ranges of S1…S7 (CoDA).
    INITIAL_CONDITION_RANGES = (
        (0.15, 1.60), (0.19, 2.16), (0.04, 0.20), (0.10, 0.35), (0.08, 0.30), (0.14, 2.67), (0.05, 0.10),
    )

    def forward(self, t, y):
        s1, s2, s3, s4, s5, s6, s7 = y.unbind(dim=-1)
        p = {name: self.broadcast(value, s1) for name, value in self.parameter_values().items()}
        uptake = p["k1"] * s1 * s6 / (1 + torch.pow(s6 / p["K1"], p["q"]))
        nad_reduction = p["k2"] * s2 * (p["N"] - s5)
        atp_production = p["k3"] * s3 * (p["A"] - s6)
        nadh_oxidation = p["k4"] * s4 * s5
        side_oxidation = p["k6"] * s2 * s5
        exchange = p["kappa"] * (s4 - s7)
        return torch.stack([
            p["J0"] - uptake,
            2 * uptake - nad_reduction - side_oxidation,
            nad_reduction - atp_production,
            atp_production - nadh_oxidation - exchange,
            nad_reduction - nadh_oxidation - side_oxidation,
            -2 * uptake + 2 * atp_production - p["k5"] * s6,
            p["psi"] * exchange - p["k"] * s7,
        ], dim=-1)

    def sample_initial_conditions(self, n, generator):
        check_count(n)
        ranges = torch.tensor(self.INITIAL_CONDITION_RANGES, dtype=self.J0.dtype, device=self.J0.device)
        draws = torch.rand((n, 7), generator=generator, dtype=self.J0.dtype, device=self.J0.device)
        return ranges[:, 0] + (ranges[:, 1] - ranges[:, 0]) * draws
