"""SST-like benchmark: a sea-surface-temperature tracer stirred by a synthetic eddy field (NEMO stand-in).

de Bézenac et al. (2018) learn SST forecasts from NEMO ocean-model output, which cannot be redistributed.
This system provides the synthetic replacement designed in the project's reference notes (§1.6): a passive
temperature tracer on a periodic mesoscale-resolving grid (1/12°, as NEMO), advected by a time-dependent,
divergence-free velocity built from a random stream function, diffused, and kept statistically stationary
by an imposed mean meridional temperature gradient G:

    T = T_ref + θ,   ∂θ/∂t + u·∇θ = κ Δθ − v G − λ θ,

which is the equation of the full temperature T_ref + G y + θ with ∂T/∂t + u·∇T = κ ΔT (plus an optional
relaxation λ of the anomaly).  The state is the periodic part T = T_ref + θ in kelvin; the background G y
is not periodic and stays out of the state (:meth:`AdvectionDiffusionSST.background_temperature` gives it).

Units: km, day, K (velocities in km day⁻¹; 1 m s⁻¹ = 86.4 km day⁻¹).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from physml.operators import dealias_mask, wavenumbers
from physml.solvers import ODESolution
from physml.systems import Grid, ParameterSpec, System, Variable, check_count, uniform

#: Order in time of :meth:`AdvectionDiffusionSST.simulate`'s scheme, as data (checked by the tests).
SCHEME_ORDERS = {"ifrk4": 4}
#: Grid spacing of a 1/12° grid at the equator, in km (NEMO's resolution in de Bézenac et al.'s data).
ONE_TWELFTH_DEGREE_KM = 2 * math.pi * 6371.0 / 360 / 12


class AdvectionDiffusionSST(System):
    """SST-like tracer advected by a random, time-dependent eddy field; pseudo-spectral, batched.

    **Velocity.**  A random-phase stream function ψ = Re Σ_k A_k exp(i(k·x + φ_k + ω_k t)) over one
    half-plane of Fourier modes (k and −k never both, so the statistics below hold exactly for every
    realisation), u = ∂ψ/∂y + U, v = −∂ψ/∂x + V.  The mode energies follow the mesoscale-peaked shell
    spectrum E(k) ∝ k⁴ exp(−2 (k/k₀)²) with k₀ = 2π / ``eddy_wavelength``, scaled so that the eddy part has
    root-mean-square speed ``velocity_rms`` at every instant.  Each mode drifts in phase at a random
    frequency ω_k ~ N(0, 1/τ²) (τ = ``flow_decorrelation_time``), so the field decorrelates over about τ
    (a frozen flow would make the forecasting task too easy).  (U, V) is an optional uniform drift.  The
    velocity is analytically divergence-free and spectrally exact on the grid.

    **Numerics.**  Pseudo-spectral in space (2/3-rule dealiasing of u·∇θ); in time, the integrating-factor
    fourth-order Runge–Kutta scheme ("ifrk4"): diffusion and relaxation exactly, advection and the
    mean-gradient source by classical RK4, fixed step ``time_step``.  For frozen coefficients RK4 is stable
    up to a Courant number max(|u|/dx + |v|/dy)·dt of 2√2 · 3/(2π) ≈ 1.35 with the 2/3 cut-off; keep it
    below about 1 (the default flow reaches about 0.8).  ``simulate`` reports the largest one met.

    **Random draws.**  Each sample has its own flow realisation (phases φ_k and frequency draws) and initial
    anomaly.  :meth:`sample_initial_conditions` draws both from the generator, *installs the flows* on the
    module (buffers ``flow_phases`` and ``flow_frequency_draws``, one row per sample; :meth:`set_flow`
    replaces them) and returns the initial temperatures after a spin-up of ``warm_up`` days under the flow
    (from t = −warm_up to t = 0).  Trajectories then start at t = 0.

    **Saving the velocity.**  :meth:`velocity` evaluates (u, v) at any times for the installed flows, so a
    dataset writer stores it beside the temperature::

        solution = system.simulate(y0, times)           # ys: (time, sample, 1, y, x), K
        currents = system.velocity(solution.ts)         # (time, sample, 2, y, x), km day-1
        # variables "u" and "v" (see velocity_variables), dims (sample, time, y, x):
        u, v = currents[:, :, 0].transpose(0, 1), currents[:, :, 1].transpose(0, 1)

    Parameters
    ----------
    grid_shape : (int, int)
        Grid points along y and x.  The default 128 × 128 at 1/12° (about 1190 km square) leaves room to
        crop 64 × 64 windows like the NEMO zones, inflow across the window edges included.
    grid_spacing : float
        Grid spacing in km along both axes.
    time_step : float
        Internal step in days (3 h by default: Courant ≈ 0.5 for the default flow).
    warm_up : float
        Spin-up of the initial conditions, in days.
    initial_anomaly_rms : float
        Root-mean-square (K) of the random initial anomaly, drawn with the flow's spectral shape.
    learnable, dtype, device, **values
        See :class:`physml.systems.System`; every parameter is a number or one value per sample.

    Examples
    --------
    >>> import torch
    >>> system = AdvectionDiffusionSST(grid_shape=(32, 32), grid_spacing=20.0, warm_up=2.0)
    >>> y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    >>> solution = system.simulate(y0, torch.arange(4.0))        # daily saves over 3 days
    >>> solution.ys.shape, system.velocity(solution.ts).shape
    (torch.Size([4, 2, 1, 32, 32]), torch.Size([4, 2, 2, 32, 32]))
    """

    name = "sst_advection_diffusion"
    title = "SST-like tracer advected and diffused by a synthetic time-dependent eddy field"
    state_variables = (
        Variable("sst", "K", "sea surface temperature (periodic part, without the background gradient)",
                 standard_name="sea_surface_temperature"),
    )
    #: The velocity components returned by :meth:`velocity`, for dataset writers.
    velocity_variables = (
        Variable("u", "km day-1", "eastward surface current", standard_name="eastward_sea_water_velocity"),
        Variable("v", "km day-1", "northward surface current", standard_name="northward_sea_water_velocity"),
    )
    parameter_specs = (
        ParameterSpec("diffusivity", "km2 day-1", 3.0, "horizontal diffusivity κ (3 km² day⁻¹ ≈ 35 m² s⁻¹)"),
        ParameterSpec("mean_temperature_gradient", "K km-1", -0.01,
                      "imposed background gradient G = ∂T/∂y (−0.01: 1 K cooler per 100 km northward)"),
        ParameterSpec("relaxation_rate", "day-1", 0.0, "relaxation rate λ of the anomaly T − T_ref"),
        ParameterSpec("reference_temperature", "K", 290.0, "reference temperature T_ref"),
        ParameterSpec("velocity_rms", "km day-1", 12.0,
                      "root-mean-square eddy speed √⟨u² + v²⟩ (12 km day⁻¹ ≈ 0.14 m s⁻¹)"),
        ParameterSpec("eddy_wavelength", "km", 250.0, "wavelength 2π/k₀ of the energy-spectrum peak"),
        ParameterSpec("flow_decorrelation_time", "day", 5.0, "decorrelation time τ of the eddy field"),
        ParameterSpec("mean_velocity_x", "km day-1", 0.0, "uniform eastward drift U"),
        ParameterSpec("mean_velocity_y", "km day-1", 0.0, "uniform northward drift V"),
    )
    time_units = "day"
    references = (
        "de Bézenac, Pajot, Gallinari (2018), Deep learning for physical processes: incorporating prior "
        "scientific knowledge, ICLR (the NEMO SST task this system stands in for)"
    )

    def __init__(self, *, grid_shape=(128, 128), grid_spacing: float = ONE_TWELFTH_DEGREE_KM,
                 time_step: float = 0.125, warm_up: float = 30.0, initial_anomaly_rms: float = 0.5,
                 learnable=(), dtype: torch.dtype = torch.float64, device=None, **values):
        super().__init__(learnable=learnable, dtype=dtype, device=device, **values)
        try:
            shape = tuple(grid_shape)
        except TypeError:
            shape = None
        if (shape is None or len(shape) != 2
                or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 8 for n in shape)):
            raise ValueError(f"grid_shape must be a pair (ny, nx) of integers >= 8, got {grid_shape!r}")
        self.grid_spacing = _check_number(grid_spacing, "grid_spacing", positive=True)
        self.time_step = _check_number(time_step, "time_step", positive=True)
        self.warm_up = _check_number(warm_up, "warm_up")
        self.initial_anomaly_rms = _check_number(initial_anomaly_rms, "initial_anomaly_rms")
        self.grid = Grid(dims=("y", "x"), shape=shape, lower=(0.0, 0.0),
                         upper=(shape[0] * self.grid_spacing, shape[1] * self.grid_spacing),
                         boundary=("periodic", "periodic"), units="km",
                         long_names=("northward distance", "eastward distance"))
        for name in ("diffusivity", "relaxation_rate", "velocity_rms"):
            if (getattr(self, name).detach() < 0).any():
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name).detach().cpu().tolist()}")
        for name in ("reference_temperature", "flow_decorrelation_time"):
            if (getattr(self, name).detach() <= 0).any():
                raise ValueError(f"{name} must be > 0, got {getattr(self, name).detach().cpu().tolist()}")
        smallest = 4 * self.grid_spacing
        if (self.eddy_wavelength.detach() < smallest).any():
            raise ValueError(f"eddy_wavelength must be at least 4 grid spacings ({smallest} km) to be "
                             f"resolved, got {self.eddy_wavelength.detach().cpu().tolist()}")
        self.batch_size()  # batched parameters must agree
        self.register_buffer("flow_phases", None)
        self.register_buffer("flow_frequency_draws", None)
        self._operator_cache: dict = {}

    # -- description -----------------------------------------------------------------------------------

    def describe(self) -> dict:
        description = super().describe()
        description["options"] = {
            "grid_spacing_km": self.grid_spacing, "time_step": self.time_step, "warm_up": self.warm_up,
            "initial_anomaly_rms": self.initial_anomaly_rms, "scheme": "ifrk4", "scheme_order": 4,
            "dealiasing": "2/3 rule on the advection term",
            "velocity": "random-phase stream function, E(k) ∝ k⁴ exp(−2(k/k₀)²), phases drifting at "
                        "N(0, 1/τ²) frequencies, plus a uniform drift",
        }
        return description

    @property
    def flow_batch_size(self) -> int | None:
        """Number of installed flow realisations (``None`` before any is installed)."""
        return None if self.flow_phases is None else self.flow_phases.shape[0]

    # -- flow realisations -----------------------------------------------------------------------------

    def sample_flow(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Draw ``n`` flow realisations from ``generator`` (phases, then frequency draws), without installing.

        Returns ``{"phases": ..., "frequency_draws": ...}``, each ``(n, ny, nx // 2 + 1)`` on the half
        spectrum; pass them to :meth:`set_flow`.
        """
        check_count(n)
        shape = (n, self.grid.shape[0], self.grid.shape[1] // 2 + 1)
        dtype, device = self.diffusivity.dtype, self.diffusivity.device
        phases = uniform(generator, shape, 0.0, 2 * math.pi, dtype, device)
        frequency_draws = torch.randn(shape, generator=generator, dtype=dtype, device=device)
        return {"phases": phases, "frequency_draws": frequency_draws}

    def set_flow(self, phases: torch.Tensor, frequency_draws: torch.Tensor) -> None:
        """Install flow realisations (one row per sample), replacing any installed before."""
        expected = (self.grid.shape[0], self.grid.shape[1] // 2 + 1)
        for label, tensor in (("phases", phases), ("frequency_draws", frequency_draws)):
            if (not isinstance(tensor, torch.Tensor) or tensor.ndim != 3
                    or tuple(tensor.shape[1:]) != expected):
                raise ValueError(f"{label} must have shape (n, {expected[0]}, {expected[1]}), "
                                 f"got {tuple(getattr(tensor, 'shape', ()))}")
        if phases.shape[0] != frequency_draws.shape[0]:
            raise ValueError(f"phases and frequency_draws disagree on the number of flows: "
                             f"{phases.shape[0]} and {frequency_draws.shape[0]}")
        batch = self.batch_size()
        if batch is not None and phases.shape[0] != batch:
            raise ValueError(f"{phases.shape[0]} flows do not match the {batch} batched parameter values")
        dtype, device = self.diffusivity.dtype, self.diffusivity.device
        self.flow_phases = phases.detach().to(dtype=dtype, device=device)
        self.flow_frequency_draws = frequency_draws.detach().to(dtype=dtype, device=device)

    # -- spectral helpers ------------------------------------------------------------------------------

    def _operators(self, dtype, device) -> dict:
        key = (dtype, str(device))
        if key not in self._operator_cache:
            ny, nx = self.grid.shape
            length_y, length_x = ny * self.grid_spacing, nx * self.grid_spacing
            ky = wavenumbers(ny, length_y, dtype=dtype, device=device).view(-1, 1)  # Nyquist zeroed
            kx = wavenumbers(nx, length_x, real=True, dtype=dtype, device=device).view(1, -1)
            full_ky = torch.fft.fftfreq(ny, d=length_y / ny, dtype=dtype, device=device) * (2 * math.pi)
            full_kx = torch.fft.rfftfreq(nx, d=length_x / nx, dtype=dtype, device=device) * (2 * math.pi)
            index_y = torch.fft.fftfreq(ny, d=1.0 / ny, device=device).view(-1, 1)
            index_x = torch.fft.rfftfreq(nx, d=1.0 / nx, device=device).view(1, -1)
            # One mode of each ±k pair, Nyquist rows and columns excluded: the half plane kx > 0, plus
            # kx = 0 with ky > 0.
            half_plane = (((index_x > 0) & (index_x < nx / 2) & (index_y.abs() < ny / 2))
                          | ((index_x == 0) & (index_y > 0) & (index_y < ny / 2)))
            self._operator_cache[key] = {
                "ky": ky, "kx": kx,
                "k_squared": full_ky.view(-1, 1) ** 2 + full_kx.view(1, -1) ** 2,
                "gradient": torch.stack([1j * kx + 0 * ky, 1j * ky + 0 * kx]),
                "velocity": torch.stack([1j * ky + 0 * kx, -1j * kx + 0 * ky]),
                "half_plane": half_plane,
                "mirror": (-torch.arange(ny, device=device)) % ny,
                "mask": dealias_mask(self.grid.shape, device=device).to(dtype),
            }
        return self._operator_cache[key]

    def _parameter(self, name: str, dtype) -> torch.Tensor:
        """Parameter shaped ``(batch or 1, 1, 1)`` for half-spectrum fields ``(batch, ny, nx // 2 + 1)``."""
        value = getattr(self, name).to(dtype)
        return value.view(-1, 1, 1)

    def _spectral_weights(self, operators, dtype) -> torch.Tensor:
        """Per-mode weights w_k ∝ E(|k|)/|k| on the half plane, with Σ w_k / 2 = 1; ``(batch or 1, ny, nxh)``.

        A random-phase field Re Σ a_k e^{i(k·x + φ_k)} over the half plane has spatial mean square
        Σ a_k² / 2, whatever the phases: amplitudes a_k = r √w_k give root-mean-square r exactly.
        """
        k = operators["k_squared"].sqrt()
        peak = 2 * math.pi / self._parameter("eddy_wavelength", dtype)
        energy = k**4 * torch.exp(-2 * (k / peak) ** 2)
        # A shell spectrum E(k) spreads over ~2πk modes: per-mode energy E(k)/k.
        weights = torch.where(operators["half_plane"], energy / torch.where(k > 0, k, 1.0), 0.0)
        return weights / (0.5 * weights.sum(dim=(-2, -1), keepdim=True))

    def _hermitian_column(self, half_spectrum, operators):
        """Complete the kx = 0 column (only ky > 0 filled) with its complex-conjugate mirror."""
        column = half_spectrum[..., 0]
        completed = column + column[..., operators["mirror"]].conj()
        return torch.cat([completed.unsqueeze(-1), half_spectrum[..., 1:]], dim=-1)

    def _random_phase_field(self, amplitudes, phases, operators):
        """Re Σ_half-plane a_k e^{i(k·x + φ_k)} on the grid; amplitudes and phases ``(batch, ny, nxh)``."""
        spectrum = self._hermitian_column(0.5 * amplitudes * torch.exp(1j * phases), operators)
        return torch.fft.irfft2(spectrum, s=self.grid.shape, norm="forward")

    def _flow_evaluator(self, dtype, device):
        """A function t ↦ velocity ``(batch, 2, ny, nx)`` for the installed flows and current parameters."""
        operators = self._operators(dtype, device)
        components = torch.broadcast_tensors(self.mean_velocity_x.to(dtype), self.mean_velocity_y.to(dtype))
        mean_velocity = torch.stack(components, dim=-1).view(-1, 2, 1, 1)
        if not (self.velocity_rms != 0).any():
            batch = self.batch_size() or self.flow_batch_size or 1
            uniform_field = mean_velocity.expand(batch, 2, *self.grid.shape)
            return lambda t: uniform_field
        if self.flow_phases is None:
            raise RuntimeError("no flow realisation is installed: call sample_initial_conditions(n, "
                               "generator) or set_flow(**sample_flow(n, generator)) first")
        phases = self.flow_phases.to(device=device, dtype=dtype)
        # ψ amplitude A_k: |k|² A_k² = velocity_rms² w_k (the speed of mode k is |k| A_k).
        k = operators["k_squared"].sqrt()
        speed = self._parameter("velocity_rms", dtype) * self._spectral_weights(operators, dtype).sqrt()
        amplitude = speed / torch.where(k > 0, k, 1.0)
        base = self._hermitian_column(0.5 * amplitude * torch.exp(1j * phases), operators)
        # Mirrored kx = 0 entries are conjugates, so their phases must turn the other way.
        rates = self.flow_frequency_draws.to(device=device, dtype=dtype) / self._parameter(
            "flow_decorrelation_time", dtype)
        rates = torch.where(operators["half_plane"], rates, 0.0)
        column = rates[..., 0]
        rates = torch.cat([(column - column[..., operators["mirror"]]).unsqueeze(-1), rates[..., 1:]], dim=-1)
        velocity_base = base.unsqueeze(1) * operators["velocity"]  # (batch, 2, ny, nxh): i ky ψ̂, −i kx ψ̂
        rates = rates.unsqueeze(1)

        def evaluate(t: float) -> torch.Tensor:
            spectrum = velocity_base * torch.exp(1j * t * rates)
            return torch.fft.irfft2(spectrum, s=self.grid.shape, norm="forward") + mean_velocity

        return evaluate

    # -- public helpers --------------------------------------------------------------------------------

    def velocity(self, t) -> torch.Tensor:
        """Velocity (u, v) in km day⁻¹ of the installed flows at time(s) ``t``.

        ``t`` a number or 0-d tensor gives ``(batch, 2, ny, nx)``; a 1-D tensor/sequence (e.g. a solution's
        ``ts``) gives ``(len(t), batch, 2, ny, nx)``, the layout of ``solution.ys``.  Dtype and device are
        the parameters'.
        """
        times = torch.as_tensor(t, dtype=torch.float64)
        if times.ndim > 1 or not torch.isfinite(times).all():
            raise ValueError(f"t must be a finite number or a 1-D sequence of times, got {t!r}")
        evaluate = self._flow_evaluator(self.diffusivity.dtype, self.diffusivity.device)
        if times.ndim == 0:
            return evaluate(float(times))
        return torch.stack([evaluate(float(value)) for value in times.tolist()])

    def background_temperature(self) -> torch.Tensor:
        """The imposed background G·(y − y_centre) in K, ``(batch or 1, 1, ny, nx)``.

        Not periodic, hence not part of the state: add it to the state to see the full temperature,
        e.g. on windows cropped from the periodic domain.
        """
        y = self.grid.mesh(dtype=self.diffusivity.dtype, device=self.diffusivity.device)[0]
        centre = 0.5 * (self.grid.upper[0] - self.grid.spacing[0])
        return self.mean_temperature_gradient.view(-1, 1, 1, 1) * (y - centre)

    # -- the protocol ----------------------------------------------------------------------------------

    def _check_state(self, y, label: str) -> torch.Tensor:
        if not isinstance(y, torch.Tensor) or not y.is_floating_point():
            raise TypeError(f"{label} must be a real floating-point tensor, got {type(y).__name__}")
        expected = (1, *self.grid.shape)
        if y.ndim != 4 or tuple(y.shape[1:]) != expected:
            raise ValueError(f"{label} must have shape (batch, {', '.join(map(str, expected))}), "
                             f"got {tuple(y.shape)}")
        flows = self.flow_batch_size if (self.velocity_rms != 0).any() else None
        for count, what in ((self.batch_size(), "batched parameters"), (flows, "installed flows")):
            if count is not None and y.shape[0] != count:
                raise ValueError(f"{label} has batch size {y.shape[0]} but the {what} have {count}")
        return y

    def _tendency_spectrum(self, anomaly_spectrum, velocity, operators):
        """Spectrum of −u·∇θ (dealiased) − v G.

        From the anomaly spectrum ``(batch, 1, ny, nxh)`` and the velocity ``(batch, 2, ny, nx)``.
        """
        gradient = torch.fft.irfft2(anomaly_spectrum * operators["gradient"], s=self.grid.shape)
        advection = torch.addcmul(velocity[:, 0] * gradient[:, 0], velocity[:, 1], gradient[:, 1])
        spectra = torch.fft.rfft2(torch.stack([advection, velocity[:, 1].expand_as(advection)], dim=1))
        gradient_strength = self.mean_temperature_gradient.to(velocity.dtype).view(-1, 1, 1)
        return (-(operators["mask"] * spectra[:, 0]) - gradient_strength * spectra[:, 1]).unsqueeze(1)

    def _linear_rate(self, operators, dtype) -> torch.Tensor:
        """Diagonal linear operator −κ|k|² − λ, shape ``(batch or 1, 1, ny, nxh)``."""
        diffusivity = self._parameter("diffusivity", dtype).unsqueeze(1)
        relaxation = self._parameter("relaxation_rate", dtype).unsqueeze(1)
        return -diffusivity * operators["k_squared"] - relaxation

    def forward(self, t, y):
        self._check_state(y, "y")
        operators = self._operators(y.dtype, y.device)
        reference = self._parameter("reference_temperature", y.dtype).unsqueeze(1)
        spectrum = torch.fft.rfft2(y - reference)
        velocity = self._flow_evaluator(y.dtype, y.device)(float(t))
        rate = (self._tendency_spectrum(spectrum, velocity, operators)
                + self._linear_rate(operators, y.dtype) * spectrum)
        return torch.fft.irfft2(rate, s=self.grid.shape)

    def sample_initial_conditions(self, n, generator, *, warm_up: float | None = None):
        """Draw and install ``n`` flows, then return ``n`` spun-up initial temperatures ``(n, 1, ny, nx)``.

        Draw order from ``generator`` (its only source of randomness): flow phases, flow frequency draws,
        initial-anomaly phases.  The anomaly is a random-phase field with the flow's spectral shape and
        root-mean-square ``initial_anomaly_rms``; it is then integrated from t = −``warm_up`` to 0 under
        the flow (``warm_up`` defaults to the constructor's).
        """
        check_count(n)
        warm_up = self.warm_up if warm_up is None else _check_number(warm_up, "warm_up")
        self.set_flow(**self.sample_flow(n, generator))
        dtype, device = self.diffusivity.dtype, self.diffusivity.device
        operators = self._operators(dtype, device)
        shape = (n, self.grid.shape[0], self.grid.shape[1] // 2 + 1)
        anomaly_phases = uniform(generator, shape, 0.0, 2 * math.pi, dtype, device)
        with torch.no_grad():
            amplitudes = self.initial_anomaly_rms * self._spectral_weights(operators, dtype).sqrt()
            anomaly = self._random_phase_field(amplitudes.expand(shape), anomaly_phases, operators)
            temperature = (anomaly + self._parameter("reference_temperature", dtype)).unsqueeze(1)
            if warm_up > 0:
                temperature = self._integrate(temperature, [-warm_up, 0.0], self.time_step)[0][-1]
        return temperature

    def simulate(self, y0, times, *, method: str | None = None, rtol: float = 1e-8, atol: float = 1e-10,
                 options: Mapping | None = None) -> ODESolution:
        """Integrate from ``y0`` (at ``times[0]``, absolute time of the flow) to each of ``times``.

        ``method`` ``None`` or ``"ifrk4"`` uses the fixed-step scheme with ``options["step_size"]`` (the
        constructor's ``time_step`` by default, shortened where needed so that every output interval holds
        a whole number of steps); any other name goes to :func:`physml.solve_ode` on :meth:`forward`.
        ``stats`` adds ``max_courant_number``, the largest max(|u|/dx + |v|/dy)·dt met.
        """
        if method is not None and method not in SCHEME_ORDERS:
            return super().simulate(y0, times, method=method, rtol=rtol, atol=atol, options=options)
        options = dict(options or {})
        unknown = set(options) - {"step_size"}
        if unknown:
            raise ValueError(f"options for the 'ifrk4' scheme accept only 'step_size', got {sorted(unknown)}")
        step_size = _check_number(options.get("step_size", self.time_step), "options['step_size']",
                                  positive=True)
        self._check_state(y0, "y0")
        times = _check_times(times)
        ys, n_steps, courant = self._integrate(y0, times.tolist(), step_size)
        stats = {"nfe": 4 * n_steps, "n_steps": n_steps, "n_accepted": n_steps, "n_rejected": 0,
                 "step_size": step_size, "max_courant_number": courant}
        # Like physml.solve_ode: float64 times on the state's device.
        return ODESolution(ts=times.to(y0.device), ys=ys, stats=stats, status="success")

    def _integrate(self, y0, times, step_size):
        """Integrating-factor RK4 on θ̂ = rfft2(T − T_ref): returns (states at times, steps, max Courant)."""
        dtype, device = y0.dtype, y0.device
        operators = self._operators(dtype, device)
        reference = self._parameter("reference_temperature", dtype).unsqueeze(1)
        linear = self._linear_rate(operators, dtype)
        flow = self._flow_evaluator(dtype, device)
        cache: dict = {}

        def velocity_at(t: float):
            # Stages reuse velocities: t + h/2 twice, and t + h as the next step's t.
            if t not in cache:
                if len(cache) > 2:
                    cache.pop(next(iter(cache)))
                cache[t] = flow(t)
            return cache[t]

        spectrum = torch.fft.rfft2(y0 - reference)
        outputs, factors, n_steps, courant = [y0], {}, 0, 0.0
        for start, end in zip(times[:-1], times[1:], strict=True):
            count = max(1, math.ceil((end - start) / step_size - 1e-9))
            step = (end - start) / count
            if step not in factors:
                factors[step] = (torch.exp(0.5 * step * linear), torch.exp(step * linear))
            half, full = factors[step]
            for index in range(count):
                t = start + index * step
                velocity = velocity_at(t)
                courant = max(courant, float((velocity[:, 0].abs() / self.grid_spacing
                                              + velocity[:, 1].abs() / self.grid_spacing).max()) * step)
                k1 = self._tendency_spectrum(spectrum, velocity, operators)
                k2 = self._tendency_spectrum(half * (spectrum + 0.5 * step * k1), velocity_at(t + 0.5 * step),
                                             operators)
                k3 = self._tendency_spectrum(half * spectrum + 0.5 * step * k2, velocity_at(t + 0.5 * step),
                                             operators)
                k4 = self._tendency_spectrum(full * spectrum + step * half * k3, velocity_at(t + step),
                                             operators)
                spectrum = full * spectrum + (step / 6) * (full * k1 + 2 * half * (k2 + k3) + k4)
            n_steps += count
            outputs.append(torch.fft.irfft2(spectrum, s=self.grid.shape) + reference)
        return torch.stack(outputs), n_steps, courant


def _check_number(value, label, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (positive and value == 0):
        expected = "a positive finite number" if positive else "a finite number >= 0"
        raise ValueError(f"{label} must be {expected}, got {value!r}")
    return float(value)


def _check_times(times) -> torch.Tensor:
    """Output times as a float64 tensor: 1-D, at least two, finite and strictly increasing."""
    try:
        tensor = torch.as_tensor(times, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"times must be a 1-D tensor or sequence of numbers, got {times!r}") from error
    if tensor.ndim != 1 or tensor.numel() < 2:
        raise ValueError(f"times must be 1-D with at least two entries, got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all() or not (tensor[1:] > tensor[:-1]).all():
        raise ValueError(f"times must be finite and strictly increasing, got {tensor.tolist()}")
    return tensor


__all__ = ["AdvectionDiffusionSST", "ONE_TWELFTH_DEGREE_KM", "SCHEME_ORDERS"]
