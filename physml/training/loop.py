"""The trajectory-fitting loop: :class:`TrainingConfig`, :class:`Trainer` and :func:`fit_trajectories`.

One iteration draws a minibatch of trajectories per environment, rolls the model out from the first
observed state (restarting from the observations at random times while the restart probability ε is
positive), and takes ``inner_steps`` optimiser steps on ``λ · MSE + model.penalty(states)``.  λ starts at
``trajectory_weight`` and grows by ``trajectory_weight_increment · MSE`` after every iteration (APHYNITY's
adaptive rule; a zero increment keeps it fixed, as LEADS and CoDA do).

Model selection uses the validation split only: the state with the lowest validation MSE (free rollouts
from the first state) is kept and, by default, loaded back at the end.  All randomness (minibatch order,
restart points) comes from one ``torch.Generator`` seeded by ``config.seed``; checkpoints store it with
the model, optimiser, scheduler, λ, counters and the best state, so a resumed run continues exactly as an
uninterrupted one would.  SIGINT/SIGTERM finish the current epoch, write a checkpoint and raise
``KeyboardInterrupt``; a second signal stops at once.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, save_checkpoint
from .data import TrajectorySet
from .distributed import DistributedContext
from .evaluation import _floating_reference, check_compatible, model_layout
from .metrics import mean_squared_error
from .rollout import draw_restart_mask, restart_probability, rollout

__all__ = ["TrainingConfig", "TrainingResult", "Trainer", "fit_trajectories"]

# Settings that may change when a run resumes (they do not alter the trajectory of the optimisation).
_RESUMABLE_CHANGES = {"epochs", "max_time", "progress", "checkpoint_every", "restore_best", "handle_signals"}


@dataclass
class TrainingConfig:
    """Settings of :func:`fit_trajectories` (plain data: ``to_dict()`` goes into results files).

    Parameters
    ----------
    epochs : int
        Passes over the training trajectories.
    batch_size : int, optional
        Trajectories per environment in a minibatch (``None``: all of them, one iteration per epoch).
    learning_rate : float
        Adam learning rate of every parameter not matched by ``learning_rates``.
    learning_rates : dict of str to float
        Learning rates by parameter-name prefix, e.g. ``{"physical_model": 1e-2}`` (the longest matching
        prefix wins; a prefix matching no trainable parameter is an error).
    betas, weight_decay : Adam settings.
    gradient_clip_norm : float, optional
        Clip the gradient norm (CoDA: 1.0).
    inner_steps : int
        Optimiser steps per minibatch (APHYNITY's N_iter).
    trajectory_weight, trajectory_weight_increment : float
        λ₀ and τ₂ of the adaptive weight λ ← λ + τ₂ · MSE (APHYNITY); increment 0 keeps λ fixed.
    restart_probability, restart_decay, restart_decay_every, restart_minimum : float, float, int, float
        ε schedule of the restarts from the ground truth, see
        :func:`physml.training.rollout.restart_probability` (LEADS: 0.99, 0.99, 10, 0; CoDA: 0.99, 0.99,
        30, 1e-3; 0 disables restarts).
    validate_every : int
        Epochs between validations (the last epoch is always validated).
    checkpoint_every : int
        Epochs between checkpoints (the last epoch, a time-out and an interrupt always write one).
    seed : int
        Seed of the training generator (minibatch order and restart points).
    max_time : float, optional
        Wall-clock budget in seconds, summed over resumed sessions; training stops (with a checkpoint)
        after the epoch that exceeds it.
    restore_best : bool
        Load the best validation state into the model at the end.
    progress : bool, optional
        tqdm progress bar; ``None`` shows it only on a terminal.
    handle_signals : bool
        Turn SIGINT/SIGTERM into a checkpoint at the end of the current epoch (main thread only).

    Examples
    --------
    >>> config = TrainingConfig(epochs=500, restart_probability=0.99, restart_decay=0.99,
    ...                         restart_decay_every=10)
    >>> config.to_dict()["restart_decay_every"]
    10
    """

    epochs: int = 100
    batch_size: int | None = None
    learning_rate: float = 1e-3
    learning_rates: dict[str, float] = field(default_factory=dict)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    gradient_clip_norm: float | None = None
    inner_steps: int = 1
    trajectory_weight: float = 1.0
    trajectory_weight_increment: float = 0.0
    restart_probability: float = 0.0
    restart_decay: float = 1.0
    restart_decay_every: int = 1
    restart_minimum: float = 0.0
    validate_every: int = 1
    checkpoint_every: int = 1
    seed: int = 0
    max_time: float | None = None
    restore_best: bool = True
    progress: bool | None = None
    handle_signals: bool = True

    def __post_init__(self):
        for name in ("epochs", "inner_steps", "restart_decay_every", "validate_every", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        size = self.batch_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {self.batch_size!r}")
        for name in ("learning_rate", "trajectory_weight"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("weight_decay", "trajectory_weight_increment", "restart_minimum"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if not isinstance(self.learning_rates, dict) or not all(
                isinstance(key, str) and isinstance(value, int | float) and value > 0
                for key, value in self.learning_rates.items()):
            raise ValueError(f"learning_rates must map parameter-name prefixes to positive numbers, got "
                             f"{self.learning_rates!r}")
        if self.gradient_clip_norm is not None and not self.gradient_clip_norm > 0:
            raise ValueError(f"gradient_clip_norm must be positive or None, got {self.gradient_clip_norm!r}")
        if self.max_time is not None and not self.max_time > 0:
            raise ValueError(f"max_time must be a positive number of seconds or None, got {self.max_time!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        restart_probability(0, self.restart_probability, self.restart_decay, self.restart_decay_every)
        self.betas = tuple(self.betas)

    def to_dict(self) -> dict:
        """Plain JSON-ready values of every setting."""
        values = asdict(self)
        values["betas"] = list(self.betas)
        return values


@dataclass
class TrainingResult:
    """What :func:`fit_trajectories` returns.

    Attributes
    ----------
    history : list of dict
        One record per validation: ``epoch``, ``iteration``, ``train_loss`` (λ · MSE + penalty),
        ``train_mse``, ``penalty`` (epoch means), ``validation_mse``, ``trajectory_weight`` (λ),
        ``restart_probability`` (ε), ``learning_rate``, ``elapsed_s``, plus what the callback adds.
    best_state : dict or None
        Model state dict with the lowest validation MSE (``None`` without a validation set).
    best_epoch : int or None
    best_validation_mse : float
    epochs_completed, iterations : int
    trajectory_weight : float
        Final λ.
    elapsed_s : float
        Training wall time over all sessions.
    stopped : str
        ``"completed"`` or ``"max_time"``.
    checkpoint_path : str or None
    """

    history: list[dict]
    best_state: dict | None
    best_epoch: int | None
    best_validation_mse: float
    epochs_completed: int
    iterations: int
    trajectory_weight: float
    elapsed_s: float
    stopped: str
    checkpoint_path: str | None


def _plain(value):
    # Checkpoints load with weights_only=True, which accepts plain Python values but not numpy scalars.
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


class Trainer:
    """Fits a :class:`physml.models.neural_ode.NeuralODE` (or subclass) to observed trajectories.

    Most users call :func:`fit_trajectories`; the trainer is exposed for finer control (single steps,
    gradient checks, custom loops).

    Parameters
    ----------
    model : nn.Module
        A model with ``simulate(y0, times)``, ``n_environments`` and optionally ``penalty(states)``
        (every :mod:`physml.models` dynamics model).
    train, validation : TrajectorySet
        Training and validation trajectories (same environments, same variables).  ``validation=None``
        disables model selection.
    config : TrainingConfig, optional
    checkpoint_path : path-like, optional
        Where checkpoints go; an existing checkpoint there is resumed by :meth:`fit`.
    optimizer_factory : callable, optional
        ``factory(parameter_groups) -> torch.optim.Optimizer`` instead of Adam.
    scheduler_factory : callable, optional
        ``factory(optimizer) -> LRScheduler``, stepped once per iteration.
    callback : callable, optional
        ``callback(trainer, record)`` after each validation; may add plain values to ``record`` (the
        current physical parameters, say).
    """

    def __init__(self, model: torch.nn.Module, train: TrajectorySet, validation: TrajectorySet | None = None,
                 config: TrainingConfig | None = None, *, checkpoint_path=None,
                 optimizer_factory: Callable | None = None, scheduler_factory: Callable | None = None,
                 callback: Callable | None = None):
        config = TrainingConfig() if config is None else config
        if not isinstance(config, TrainingConfig):
            raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
        if not hasattr(model, "simulate"):
            raise TypeError(
                f"model must be a physml dynamics model with simulate(), got {type(model).__name__}")
        check_compatible(model, train, "train")
        if validation is not None:
            missing = [e for e in train.environments if e not in validation.environments]
            extra = [e for e in validation.environments if e not in train.environments]
            if missing or extra or validation.environments != train.environments:
                raise ValueError(
                    f"validation must hold the training environments {list(train.environments)} in the same "
                    f"order; missing from validation: {missing}, not in train: {extra}"
                )
            check_compatible(model, validation, "validation")
        self.model, self.config, self.callback = model, config, callback
        reference = _floating_reference(model)
        dtype, device = (reference.dtype, reference.device) if reference is not None else (None, None)
        self.train_data = train.to(dtype, device)
        self.validation_data = None if validation is None else validation.to(dtype, device)
        self.times = train.times.to(device)
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.distributed = DistributedContext.from_environment(device)
        self.batch_size = min(config.batch_size or train.n_samples, train.n_samples)
        self._check_batch_shares()
        groups = self._parameter_groups()
        if optimizer_factory is None:
            self.optimizer = torch.optim.Adam(groups, lr=config.learning_rate, betas=config.betas,
                                              weight_decay=config.weight_decay)
        else:
            self.optimizer = optimizer_factory(groups)
        self.scheduler = None if scheduler_factory is None else scheduler_factory(self.optimizer)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.distributed.broadcast_module(model)
        self.epoch = 0
        self.iteration = 0
        self.trajectory_weight = float(config.trajectory_weight)
        self.best_validation = math.inf
        self.best_epoch: int | None = None
        self.best_state: dict | None = None
        self.history: list[dict] = []
        self.elapsed = 0.0
        self._interrupted = False

    # -- setup ------------------------------------------------------------------------------------

    def _check_batch_shares(self) -> None:
        sizes = {self.batch_size}
        if self.train_data.n_samples % self.batch_size:
            sizes.add(self.train_data.n_samples % self.batch_size)
        uneven = sorted(size for size in sizes if size % self.distributed.world_size)
        if uneven:
            raise ValueError(
                f"minibatches of {uneven} trajectories per environment (batch_size={self.config.batch_size}, "
                f"{self.train_data.n_samples} training trajectories per environment) cannot be split equally "
                f"over WORLD_SIZE={self.distributed.world_size} processes"
            )

    def _parameter_groups(self) -> list[dict]:
        trainable = [(name, parameter) for name, parameter in self.model.named_parameters()
                     if parameter.requires_grad]
        if not trainable:
            raise ValueError(f"{type(self.model).__name__} has no trainable parameters")
        prefixes = self.config.learning_rates
        unmatched = [prefix for prefix in prefixes
                     if not any(_matches(name, prefix) for name, _ in trainable)]
        if unmatched:
            top_level = sorted({name.split(".")[0] for name, _ in trainable})
            raise ValueError(
                f"learning_rates prefixes {unmatched} match no trainable parameter of "
                f"{type(self.model).__name__}; its trainable parameters start with {top_level}"
            )
        grouped: dict[str | None, list] = {}
        for name, parameter in trainable:
            matching = [prefix for prefix in prefixes if _matches(name, prefix)]
            grouped.setdefault(max(matching, key=len) if matching else None, []).append(parameter)
        return [{"params": parameters, "name": prefix or "default",
                 "lr": self.config.learning_rate if prefix is None else float(prefixes[prefix])}
                for prefix, parameters in grouped.items()]

    # -- one iteration ----------------------------------------------------------------------------

    def minibatches(self):
        """This epoch's minibatches ``(n_environments, batch, n_times, *state)``, drawn from the generator."""
        states = self.train_data.states
        environments, samples = states.shape[:2]
        order = torch.stack([torch.randperm(samples, generator=self.generator) for _ in range(environments)])
        rows = torch.arange(environments).unsqueeze(1)
        for start in range(0, samples, self.batch_size):
            index = order[:, start: start + self.batch_size]
            yield states[rows.to(states.device), index.to(states.device)]

    def compute_gradients(self, batch: torch.Tensor, restart_mask: torch.Tensor | None = None) -> dict:
        """Loss and gradients of one minibatch (this process's share), averaged over the processes.

        Leaves the gradients in ``.grad`` (no optimiser step) and returns the losses as floats:
        ``train_mse``, ``penalty`` and ``train_loss`` (= λ · train_mse + penalty).
        """
        self.model.train()
        shard = batch[:, self.distributed.share(batch.shape[1])]
        states = model_layout(self.model, shard)
        prediction = rollout(self.model, states, self.times, restart_mask)
        trajectory_loss = mean_squared_error(prediction, states)
        penalty_function = getattr(self.model, "penalty", None)
        penalty = penalty_function(states) if penalty_function is not None else None
        loss = self.trajectory_weight * trajectory_loss
        if penalty is not None:
            loss = loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.distributed.average_gradients(self.model.parameters())
        values = [trajectory_loss.item(), 0.0 if penalty is None else penalty.item(), loss.item()]
        values = self.distributed.average(values)
        return dict(zip(("train_mse", "penalty", "train_loss"), values, strict=True))

    def restart_probability(self) -> float:
        """ε at the current iteration."""
        config = self.config
        return restart_probability(self.iteration, config.restart_probability, config.restart_decay,
                                   config.restart_decay_every, config.restart_minimum)

    def step(self, batch: torch.Tensor) -> dict:
        """One iteration on ``batch``: ``inner_steps`` optimiser steps, then the λ and ε updates."""
        for _ in range(self.config.inner_steps):
            mask = draw_restart_mask(len(self.times), self.restart_probability(), self.generator)
            losses = self.compute_gradients(batch, mask)
            if not math.isfinite(losses["train_loss"]):
                raise FloatingPointError(
                    f"training diverged: loss {losses['train_loss']} at epoch {self.epoch + 1}, iteration "
                    f"{self.iteration + 1}; lower the learning rate or resume from the last checkpoint"
                )
            if self.config.gradient_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.gradient_clip_norm)
            self.optimizer.step()
        self.trajectory_weight += self.config.trajectory_weight_increment * losses["train_mse"]
        if self.scheduler is not None:
            self.scheduler.step()
        self.iteration += 1
        return losses

    # -- validation -------------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> float | None:
        """MSE of free rollouts on the validation split (``None`` without one)."""
        if self.validation_data is None:
            return None
        was_training = self.model.training
        self.model.eval()
        try:
            states = model_layout(self.model, self.validation_data.states)
            prediction = rollout(self.model, states, self.validation_data.times.to(states.device))
            return float(mean_squared_error(prediction, states))
        finally:
            self.model.train(was_training)

    # -- checkpoints ------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything needed to continue training exactly where it stands."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "trajectory_weight": self.trajectory_weight,
            "best_validation": self.best_validation,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "history": self.history,
            "elapsed": self.elapsed,
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        saved, current = state["config"], self.config.to_dict()
        changed = sorted(name for name in current if name not in _RESUMABLE_CHANGES
                         and saved.get(name) != current[name])
        if changed:
            details = ", ".join(f"{name}: {saved.get(name)!r} -> {current[name]!r}" for name in changed)
            raise ValueError(
                f"the checkpoint was written with different settings ({details}); resume with the original "
                f"settings or start a new run (only {sorted(_RESUMABLE_CHANGES)} may change)"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        for name in ("epoch", "iteration", "trajectory_weight", "best_validation", "best_epoch", "best_state",
                     "history", "elapsed"):
            setattr(self, name, state[name])
        self.history = list(self.history)

    def save_checkpoint(self) -> None:
        """Write the checkpoint atomically (main process only; the others wait)."""
        if self.checkpoint_path is None:
            return
        if self.distributed.is_main:
            save_checkpoint(self.checkpoint_path, self.state_dict())
        self.distributed.barrier()

    def load_checkpoint(self) -> bool:
        """Resume from ``checkpoint_path`` if a checkpoint is there; returns whether one was loaded."""
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            return False
        reference = _floating_reference(self.model)
        self.load_state_dict(load_checkpoint(self.checkpoint_path,
                                             map_location=None if reference is None else reference.device))
        return True

    # -- the loop ---------------------------------------------------------------------------------

    def _snapshot(self) -> dict:
        return {name: value.detach().clone() for name, value in self.model.state_dict().items()}

    def _install_signal_handlers(self) -> dict:
        if not self.config.handle_signals or threading.current_thread() is not threading.main_thread():
            return {}

        def request_stop(signum, frame):
            if self._interrupted:  # a second signal: stop now, without waiting for the epoch to end
                raise KeyboardInterrupt
            self._interrupted = True

        return {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def fit(self, resume: bool = True) -> TrainingResult:
        """Train for ``config.epochs`` epochs (continuing a checkpoint if ``resume``); return the result."""
        if resume:
            self.load_checkpoint()
        config = self.config
        previous_handlers = self._install_signal_handlers()
        # tqdm's disable=None turns the bar off when the output is not a terminal.
        disable = None if config.progress is None else not config.progress
        disable = True if not self.distributed.is_main else disable
        progress = tqdm(total=config.epochs, initial=min(self.epoch, config.epochs), desc="training",
                        unit="epoch", disable=disable, dynamic_ncols=True)
        stopped = "completed"
        try:
            while self.epoch < config.epochs:
                started = time.perf_counter()
                losses = [self.step(batch) for batch in self.minibatches()]
                self.epoch += 1
                self.elapsed += time.perf_counter() - started
                out_of_time = (config.max_time is not None
                               and self.distributed.any(self.elapsed >= config.max_time))
                validated = (self.epoch % config.validate_every == 0 or self.epoch == config.epochs
                             or out_of_time)
                if validated:
                    self._record(losses)
                # Checked after the validation so that a signal arriving during it still stops this epoch.
                interrupted = self.distributed.any(self._interrupted)
                if interrupted and not validated:
                    self._record(losses)
                final = self.epoch == config.epochs or out_of_time or interrupted
                if self.epoch % config.checkpoint_every == 0 or final:
                    self.save_checkpoint()
                progress.update(1)
                if self.history:
                    progress.set_postfix(loss=f"{self.history[-1]['train_loss']:.3g}",
                                         val=f"{self.history[-1]['validation_mse']:.3g}", refresh=False)
                if interrupted:
                    raise KeyboardInterrupt(
                        f"training interrupted after epoch {self.epoch}"
                        + (f"; checkpoint written to {self.checkpoint_path}" if self.checkpoint_path else ""))
                if out_of_time:
                    stopped = "max_time"
                    break
        finally:
            progress.close()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            self._interrupted = False
        if config.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return TrainingResult(
            history=list(self.history), best_state=self.best_state, best_epoch=self.best_epoch,
            best_validation_mse=self.best_validation, epochs_completed=self.epoch, iterations=self.iteration,
            trajectory_weight=self.trajectory_weight, elapsed_s=self.elapsed, stopped=stopped,
            checkpoint_path=None if self.checkpoint_path is None else str(self.checkpoint_path),
        )

    def _record(self, losses: list[dict]) -> None:
        validation = self.validate()
        record = {
            "epoch": self.epoch,
            "iteration": self.iteration,
            **{name: sum(entry[name] for entry in losses) / len(losses) for name in losses[0]},
            "validation_mse": math.nan if validation is None else validation,
            "trajectory_weight": self.trajectory_weight,
            "restart_probability": self.restart_probability(),
            "learning_rate": self.optimizer.param_groups[0]["lr"],
            "elapsed_s": self.elapsed,
        }
        if validation is not None and validation < self.best_validation:
            self.best_validation, self.best_epoch, self.best_state = validation, self.epoch, self._snapshot()
        if self.callback is not None:
            self.callback(self, record)
        self.history.append({name: _plain(value) for name, value in record.items()})


def fit_trajectories(model: torch.nn.Module, train: TrajectorySet, validation: TrajectorySet | None = None,
                     config: TrainingConfig | None = None, *, checkpoint_path=None, resume: bool = True,
                     optimizer_factory: Callable | None = None, scheduler_factory: Callable | None = None,
                     callback: Callable | None = None) -> TrainingResult:
    """Fit ``model`` to ``train`` trajectories, selecting the state with the best ``validation`` MSE.

    See :class:`Trainer` for the arguments and :class:`TrainingResult` for the result.  With
    ``checkpoint_path`` set, an existing checkpoint there is resumed (``resume=True``) and progress is
    saved every ``config.checkpoint_every`` epochs.

    Examples
    --------
    >>> import torch
    >>> from physml.models.neural_ode import NeuralODE
    >>> times = torch.linspace(0, 2, 9)
    >>> decay = torch.exp(-times).view(1, 1, 9, 1).expand(1, 4, 9, 1).clone()   # du/dt = -u
    >>> data = TrajectorySet(decay, times, ("u",), (0,))
    >>> rate = torch.nn.Linear(1, 1, bias=False)
    >>> _ = torch.nn.init.zeros_(rate.weight)
    >>> model = NeuralODE(rate, method="rk4", step_size=0.05)
    >>> result = fit_trajectories(model, data, data, TrainingConfig(epochs=150, learning_rate=0.05))
    >>> abs(rate.weight.item() + 1.0) < 0.01   # the decay rate is recovered
    True
    """
    trainer = Trainer(model, train, validation, config, checkpoint_path=checkpoint_path,
                      optimizer_factory=optimizer_factory, scheduler_factory=scheduler_factory,
                      callback=callback)
    return trainer.fit(resume=resume)

