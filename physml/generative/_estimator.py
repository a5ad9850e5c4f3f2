"""Shared machinery of the generative estimators: data batches, the training loop, conditions."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ._validation import check_labels, check_samples, resolve_generator
from .likelihood import ode_log_likelihood


class BatchSource:
    """Minibatches from a data tensor (drawn with replacement) or from a sampler ``data(n, generator=...)``.

    A sampler gives a fresh draw every step, as torchcfm's training scripts do with ``sample_moons``.
    """

    def __init__(self, data, labels=None, *, num_classes=None, name: str = "data"):
        self.name = name
        if callable(data) and not isinstance(data, torch.Tensor):
            if labels is not None:
                raise ValueError(
                    f"labels cannot be combined with a sampler as {name}; pass a tensor of samples"
                )
            if num_classes is not None:
                raise ValueError(f"a conditional model needs {name} as a tensor with labels, not a sampler")
            self.sampler = data
            self.data = None
            self.labels = None
        else:
            self.sampler = None
            self.data = check_samples(data, name=name)
            self.labels = check_labels(labels, self.data, num_classes)

    def example(self, generator) -> torch.Tensor:
        """One batch, checked, that fixes the event shape, dtype and device."""
        if self.data is not None:
            return self.data[:2]
        return check_samples(self.sampler(2, generator=generator), name=f"{self.name}(n)")

    def draw(self, batch_size: int, generator: torch.Generator):
        if self.data is None:
            batch = self.sampler(batch_size, generator=generator)
            if not isinstance(batch, torch.Tensor) or not torch.isfinite(batch).all():
                raise ValueError(f"{self.name}(n) returned non-finite samples or a non-tensor")
            return batch, None
        indices = torch.randint(
            0, self.data.shape[0], (batch_size,), generator=generator, device=self.data.device
        )
        return self.data[indices], None if self.labels is None else self.labels[indices]


def training_generator(generator, source: BatchSource) -> torch.Generator:
    device = (
        source.data.device
        if source.data is not None
        else (generator.device if generator is not None else "cpu")
    )
    return resolve_generator(generator, device)


def run_training(
    parameters, compute_loss, *, steps: int, learning_rate: float, weight_decay: float, description: str,
    ema_decay: float | None = None,
) -> list[float]:
    r"""Adam on ``compute_loss()`` for ``steps`` steps with a tqdm bar (off when not a terminal).

    With ``ema_decay`` the parameters end as the exponential moving average of their trajectory,
    :math:`\bar\theta \leftarrow d\,\bar\theta + (1 - d)\,\theta` after every step (the weights
    score-based models are sampled with: score_sde uses 0.999 to 0.9999); the average starts at the
    initial weights and is debiased like Adam's moments, so short runs are not pulled towards them.

    Returns the loss history.  A non-finite loss stops training with a ``FloatingPointError`` that says
    at which step, rather than silently filling the parameters with NaN.
    """
    parameters = [parameter for parameter in parameters if parameter.requires_grad]
    if not parameters:
        raise ValueError("the network has no trainable parameters")
    optimizer = torch.optim.Adam(parameters, lr=learning_rate, weight_decay=weight_decay)
    average = None
    if ema_decay is not None:
        average = [torch.zeros_like(parameter) for parameter in parameters]
    history: list[float] = []
    progress = tqdm(range(steps), desc=description, disable=None, leave=False)
    for step in progress:
        optimizer.zero_grad(set_to_none=True)
        loss = compute_loss()
        value = float(loss.detach())
        if value != value or value in (float("inf"), float("-inf")):
            raise FloatingPointError(
                f"{description}: the loss became {value} at step {step}; "
                "lower the learning rate or check the data"
            )
        loss.backward()
        optimizer.step()
        if average is not None:
            with torch.no_grad():
                torch._foreach_mul_(average, ema_decay)
                torch._foreach_add_(average, [parameter.detach() for parameter in parameters],
                                    alpha=1.0 - ema_decay)
        history.append(value)
        if step % 50 == 0:
            progress.set_postfix(loss=f"{value:.4g}")
    progress.close()
    if average is not None:
        with torch.no_grad():
            correction = 1.0 - ema_decay ** len(history)
            for parameter, value in zip(parameters, average, strict=True):
                parameter.copy_(value / correction)
    return history


def parameter_like(module) -> tuple[torch.dtype, torch.device]:
    """dtype and device of a module's first floating parameter (float32 on CPU when it has none)."""
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype, parameter.device
    return torch.float32, torch.device("cpu")


def expand_condition(condition, n: int, num_classes, device) -> torch.Tensor | None:
    """Class labels for ``n`` samples from an int, a tensor ``(n,)`` or ``None``."""
    if condition is None:
        return None
    if num_classes is None:
        raise ValueError("condition was given but the model was configured without num_classes")
    if isinstance(condition, int) and not isinstance(condition, bool):
        labels = torch.full((n,), condition, dtype=torch.long, device=device)
    elif isinstance(condition, torch.Tensor) and not condition.is_floating_point():
        labels = condition.to(device=device, dtype=torch.long).reshape(-1)
        if labels.numel() == 1:
            labels = labels.expand(n).clone()
    else:
        raise TypeError(f"condition must be an int class label or an integer tensor, got {condition!r}")
    if labels.shape != (n,):
        raise ValueError(f"condition must hold 1 or {n} labels, got shape {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"condition labels must lie in [0, {num_classes - 1}], got {labels.unique().tolist()}"
        )
    return labels


def drop_conditions(labels, probability: float, null_label: int, generator):
    """Replace each label by the null class with the given probability (classifier-free guidance training)."""
    if labels is None or probability == 0.0:
        return labels
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < probability
    return torch.where(drop, torch.full_like(labels, null_label), labels)


class NotFittedError(RuntimeError):
    """Raised when a model is used before :meth:`fit` (and no network was given)."""


class NetworkEstimator:
    """Plumbing shared by the network-based estimators (score model, flow matching, CNF).

    Subclasses hold ``network_`` (``None`` until :meth:`fit` builds it), ``loss_history_`` and the training
    settings ``steps``, ``learning_rate``, ``weight_decay``, and define ``log_prob``.
    """

    def _require_network(self):
        if self.network_ is None:
            raise NotFittedError(f"{type(self).__name__} has no network yet: call fit() or pass network=")
        return self.network_

    def _event_shape(self) -> tuple[int, ...]:
        """Shape of one sample: from the data seen by :meth:`fit`, else the network's ``dim``."""
        if self.event_shape_ is not None:
            return self.event_shape_
        dim = getattr(self.network_, "dim", None)
        if dim is None:
            raise NotFittedError(
                "cannot infer the sample shape: call fit() or give the network a 'dim' attribute"
            )
        return (int(dim),)

    def _flow_log_prob(self, velocity, x, base_log_prob, *, trace, generator, method, rtol, atol,
                       return_stats):
        """Log-density of ``x`` under the flow ``velocity`` from base (t = 0) to data (t = 1)."""
        with torch.no_grad():
            log_prob, stats = ode_log_likelihood(
                velocity, x, data_time=1.0, base_time=0.0, base_log_prob=base_log_prob, trace=trace,
                generator=generator, method=method or self.method, rtol=rtol or self.rtol,
                atol=atol or self.atol,
            )  # fmt: skip
        return (log_prob, stats) if return_stats else log_prob

    def _prepare_network(self, example: torch.Tensor, generator, num_classes=None):
        """Build the default MLP on first use (2-D data only); move the network to the data, in train mode."""
        if self.network_ is None:
            if example.ndim != 2:
                raise ValueError(
                    f"the default network handles data of shape (n, dim); got {tuple(example.shape)}: "
                    "pass a network"
                )
            from .networks import TimeConditionedMLP

            self.network_ = TimeConditionedMLP(
                example.shape[1],
                self.hidden_sizes,
                self.activation,
                num_classes=num_classes,
                generator=generator,
                dtype=example.dtype,
                device=example.device,
            )
        self.network_.to(dtype=example.dtype, device=example.device)
        self.network_.train()

    def _train_network(self, compute_loss):
        """Adam on ``compute_loss()`` with the estimator's settings; leaves the network in eval mode."""
        self.loss_history_ += run_training(
            self.network_.parameters(),
            compute_loss,
            steps=self.steps,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            description=f"{type(self).__name__}.fit",
            ema_decay=getattr(self, "ema_decay", None),
        )
        self.network_.eval()
        return self

    def score(self, x: torch.Tensor, **log_prob_options) -> float:
        """Mean log-likelihood of ``x`` (nats per sample; higher is better), as scikit-learn's ``score``."""
        return float(self.log_prob(x, **log_prob_options).mean())
