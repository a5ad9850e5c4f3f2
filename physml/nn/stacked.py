"""Many copies of one network evaluated in a single vectorised call.

Multi-environment models (LEADS, CoDA, one network per environment) hold one parameter set per
environment.  Looping over environments in Python, as the reference implementations do, costs one
kernel launch per layer per environment at every right-hand-side evaluation of the solver.  Here the
parameter sets are *stacked* along a leading member dimension and evaluated at once:

- :func:`stacked_forward` evaluates ``module`` for every member ``m`` with the parameters
  ``{name: tensor[m]}`` on the input ``x[m]``.  Linear layers become one batched matrix product,
  convolutions one grouped convolution, elementwise activations run unchanged, layers defining
  ``plan_stacked(parameters)`` (the physml networks) use their own batched path, and anything else
  falls back to ``torch.func.vmap`` over ``torch.func.functional_call``, which is general but about twice
  as slow on small networks;
- :func:`stacked_plan` does the per-parameter preparation once and returns the evaluation as a
  function, for solvers that evaluate the same parameters many times;
- :class:`StackedModules` owns ``count`` independently initialised copies of a network with their
  parameters stacked, so a whole ensemble is one module, one optimiser parameter group and one call;
- :func:`weight_matrices` lists each layer's weight as a matrix (per member), for spectral-norm penalties.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .activations import Swish, swish

__all__ = ["StackedModules", "child_parameters", "stacked_forward", "stacked_plan", "stacked_state",
           "weight_matrices"]

# Parameter-free layers that act elementwise, so an extra leading dimension changes nothing.
_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.SiLU, nn.Sigmoid, nn.Softplus, nn.ELU, nn.GELU, nn.LeakyReLU, nn.SELU,
                nn.Identity)
_CONVOLUTIONS = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}
# Below this many input or output channels a convolution runs once per member on CPU (see
# _grouped_convolution).
_THIN_CHANNELS = 16


def child_parameters(parameters: Mapping[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The entries of ``parameters`` under submodule ``name``, with the ``name.`` prefix removed.

    Examples
    --------
    >>> sorted(child_parameters({"layers.0.weight": 1, "layers.0.bias": 2, "head.weight": 3}, "layers.0"))
    ['bias', 'weight']
    """
    if not name:
        return dict(parameters)
    prefix = name + "."
    return {key[len(prefix):]: value for key, value in parameters.items() if key.startswith(prefix)}


def stacked_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers of ``module`` by name (the mapping :func:`stacked_forward` expects)."""
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


def stacked_plan(module: nn.Module,
                 parameters: Mapping[str, torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Prepare the evaluation of stacked copies of ``module`` once; the result maps inputs to outputs.

    The preparation (transposed weights, grouped convolution kernels, complex spectral weights) is done
    once, so a solver calling the plan at every stage repeats only the arithmetic.  A plan is valid as
    long as the tensors in ``parameters`` are not replaced (one solve, one rollout).  See
    :func:`stacked_forward` for the arguments; layers customise their plan with
    ``plan_stacked(parameters)``.

    Examples
    --------
    >>> import torch
    >>> network = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> stacked = {name: value.expand(3, *value.shape) for name, value in network.named_parameters()}
    >>> evaluate = stacked_plan(network, stacked)
    >>> x = torch.randn(3, 5, 2)
    >>> torch.allclose(evaluate(x), network(x), atol=1e-6)   # identical copies: the network itself
    True
    """
    hook = getattr(module, "plan_stacked", None)
    if hook is not None:
        return hook(parameters)
    if isinstance(module, nn.Sequential):
        grouped = _group_by_child(parameters)
        pipeline = _grouped_pipeline(module, grouped)
        if pipeline is not None:
            return pipeline
        steps = [stacked_plan(child, grouped.get(name, {})) for name, child in module.named_children()]

        def sequence(x: torch.Tensor) -> torch.Tensor:
            for step in steps:
                x = step(x)
            return x

        return sequence
    if type(module) is nn.Linear:
        return _linear_plan(parameters["weight"], parameters.get("bias"))
    if type(module) in _CONVOLUTIONS:
        return _convolution_plan(module, parameters["weight"], parameters.get("bias"))
    if type(module) in _ELEMENTWISE:
        return module
    return partial(_vectorised_call, module, dict(parameters))


def stacked_forward(module: nn.Module, parameters: Mapping[str, torch.Tensor],
                    x: torch.Tensor) -> torch.Tensor:
    """Evaluate copies of ``module``: member ``m`` uses ``{name: parameters[name][m]}`` on input ``x[m]``.

    Parameters
    ----------
    module : nn.Module
        The architecture.  Its own parameter values are not used, only its structure and settings.
    parameters : mapping of str to torch.Tensor
        Every parameter and buffer of ``module`` by its qualified name, each with a leading member
        dimension (shape ``(members, *original_shape)``).
    x : torch.Tensor
        Inputs, shape ``(members, *input_shape)`` where ``x[m]`` is a valid input of ``module``.

    Returns
    -------
    torch.Tensor
        ``(members, *output_shape)``; ``result[m]`` equals ``module(x[m])`` evaluated with member ``m``'s
        parameters.

    Examples
    --------
    >>> import torch
    >>> layer = torch.nn.Linear(2, 3)
    >>> weights = {"weight": torch.randn(4, 3, 2), "bias": torch.randn(4, 3)}
    >>> stacked_forward(layer, weights, torch.randn(4, 5, 2)).shape
    torch.Size([4, 5, 3])
    """
    return stacked_plan(module, parameters)(x)


def _group_by_child(parameters: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    # One pass over the names instead of one per child.
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in parameters.items():
        child, _, rest = key.partition(".")
        grouped.setdefault(child, {})[rest] = value
    return grouped


def _linear_plan(weight: torch.Tensor, bias: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
    members, out_features, in_features = weight.shape
    transposed = weight.transpose(1, 2)
    bias = None if bias is None else bias.unsqueeze(1)

    def linear(x: torch.Tensor) -> torch.Tensor:
        flat = x if x.ndim == 3 else x.reshape(members, -1, in_features)
        result = torch.bmm(flat, transposed) if bias is None else torch.baddbmm(bias, flat, transposed)
        return result if x.ndim == 3 else result.reshape(*x.shape[:-1], out_features)

    return linear


def _convolution_plan(module, weight: torch.Tensor, bias: torch.Tensor | None):
    # Members become groups: (members, batch, channels, *grid) -> (batch, members * channels, *grid).
    members, out_channels = weight.shape[:2]
    spatial = len(module.kernel_size)
    kernel = weight.reshape(members * out_channels, *weight.shape[2:])
    bias = None if bias is None else bias.reshape(-1)
    convolve = _CONVOLUTIONS[type(module)]
    circular = module.padding_mode != "zeros"
    padding = 0 if circular else module.padding

    def convolution(x: torch.Tensor) -> torch.Tensor:
        in_shape = x.shape[-(spatial + 1):]
        batch_shape = x.shape[1:-(spatial + 1)]
        grouped = x.reshape(members, -1, *in_shape).transpose(0, 1)
        grouped = grouped.reshape(-1, members * in_shape[0], *in_shape[1:])
        if circular:
            grouped = F.pad(grouped, module._reversed_padding_repeated_twice, mode=module.padding_mode)
        result = convolve(grouped, kernel, bias, module.stride, padding, module.dilation,
                          members * module.groups)
        result = result.reshape(result.shape[0], members, out_channels, *result.shape[2:]).transpose(0, 1)
        return result.reshape(members, *batch_shape, *result.shape[2:])

    return convolution


def _grouped_pipeline(module: nn.Sequential, grouped: dict[str, dict[str, torch.Tensor]]):
    """Convolutions and activations run in the grouped layout ``(batch, members · channels, *grid)``.

    Converting between ``(members, batch, channels, *grid)`` and the grouped layout copies the
    activations, so it is done once for the whole stack rather than at every layer.  Returns ``None``
    when a layer does not fit (batch norm, say).
    """
    children = list(module.named_children())
    convolutions = [child for _, child in children if type(child) in _CONVOLUTIONS]
    if not convolutions or len({type(child) for child in convolutions}) != 1:
        return None
    steps = []
    for name, child in children:
        parameters = grouped.get(name, {})
        if type(child) in _CONVOLUTIONS:
            steps.append(_grouped_convolution(child, parameters["weight"], parameters.get("bias")))
        elif isinstance(child, Swish):
            beta = parameters["beta"]
            steps.append(partial(_grouped_swish, beta.reshape(1, beta.shape[0], 1)))
        elif type(child) in _ELEMENTWISE:
            steps.append(child)
        else:
            return None
    members = grouped[children[[child for _, child in children].index(convolutions[0])][0]]["weight"].shape[0]
    spatial = len(convolutions[0].kernel_size)

    def pipeline(x: torch.Tensor) -> torch.Tensor:
        batch_shape, in_shape = x.shape[1:-(spatial + 1)], x.shape[-(spatial + 1):]
        h = x.reshape(members, -1, *in_shape).transpose(0, 1)
        h = h.reshape(h.shape[0], members * in_shape[0], *in_shape[1:])
        for step in steps:
            h = step(h)
        h = h.reshape(h.shape[0], members, -1, *h.shape[2:]).transpose(0, 1)
        return h.reshape(members, *batch_shape, *h.shape[2:])

    return pipeline


def _grouped_convolution(module, weight: torch.Tensor, bias: torch.Tensor | None):
    members, out_channels = weight.shape[:2]
    kernel = weight.reshape(members * out_channels, *weight.shape[2:])
    bias = None if bias is None else bias.reshape(-1)
    convolve = _CONVOLUTIONS[type(module)]
    circular = module.padding_mode != "zeros"
    padding = 0 if circular else module.padding

    # On CPU, grouped convolutions with few channels per member (the 2-field input and output layers)
    # measured about twice as slow as one convolution per member, forward and backward; wide layers
    # (64 channels) are faster grouped.
    thin = min(module.in_channels, module.out_channels) < _THIN_CHANNELS
    weights = weight.unbind(0)
    biases = [None] * members if bias is None else bias.reshape(members, out_channels).unbind(0)

    def convolution(h: torch.Tensor) -> torch.Tensor:
        if circular:
            h = F.pad(h, module._reversed_padding_repeated_twice, mode=module.padding_mode)
        if thin and h.device.type == "cpu":
            parts = h.chunk(members, dim=1)
            return torch.cat([convolve(part, weights[m], biases[m], module.stride, padding, module.dilation,
                                       module.groups) for m, part in enumerate(parts)], dim=1)
        return convolve(h, kernel, bias, module.stride, padding, module.dilation, members * module.groups)

    return convolution


def _grouped_swish(beta: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    # beta (1, members, 1) against the grouped activations viewed as (batch, members, the rest)
    return swish(h.reshape(h.shape[0], beta.shape[1], -1), beta).reshape(h.shape)


def _vectorised_call(module: nn.Module, parameters, x: torch.Tensor) -> torch.Tensor:
    def single(member_parameters, member_input):
        return torch.func.functional_call(module, member_parameters, (member_input,))

    return torch.func.vmap(single)(parameters, x)


def weight_matrices(module: nn.Module, parameters: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each layer's weight as a stack of matrices ``(members, rows, columns)``, by parameter name.

    Linear and convolution weights are reshaped to ``(out, in · kernel)`` (PyTorch's spectral-norm
    convention); layers defining ``penalty_matrices(parameters)`` supply their own (the Fourier layers
    give the real part of their complex weights).  Biases, vectors and scalars (such as Swish slopes) are
    left out.  ``parameters`` maps names to tensors with a leading member dimension.

    Examples
    --------
    >>> import torch
    >>> network = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    >>> stacked = {name: value.expand(5, *value.shape) for name, value in network.named_parameters()}
    >>> {name: tuple(matrix.shape) for name, matrix in weight_matrices(network, stacked).items()}
    {'0.weight': (5, 4, 18), '2.weight': (5, 1, 3)}
    """
    hook = getattr(module, "penalty_matrices", None)
    if hook is not None:
        return dict(hook(parameters))
    matrices = {}
    for name, _ in module.named_parameters(recurse=False):
        tensor = parameters[name]
        if name.endswith("weight") and tensor.ndim >= 3:
            matrices[name] = tensor.reshape(tensor.shape[0], tensor.shape[1], -1)
    for child_name, child in module.named_children():
        for name, matrix in weight_matrices(child, child_parameters(parameters, child_name)).items():
            matrices[f"{child_name}.{name}"] = matrix
    return matrices


def _check_same_structure(modules: Sequence[nn.Module]) -> None:
    reference = {name: tuple(value.shape) for name, value in stacked_state(modules[0]).items()}
    for index, module in enumerate(modules[1:], start=1):
        shapes = {name: tuple(value.shape) for name, value in stacked_state(module).items()}
        if shapes != reference:
            differences = sorted(set(shapes.items()) ^ set(reference.items()))
            raise ValueError(
                f"modules must share one architecture to be stacked; module {index} differs from module 0 "
                f"in {differences[:4]}"
            )


def _replace_tensor(module: nn.Module, name: str, value: torch.Tensor, *, is_parameter: bool) -> None:
    owner_name, _, leaf = name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    if is_parameter:
        setattr(owner, leaf, value)
    else:
        owner._buffers[leaf] = value


class StackedModules(nn.Module):
    """``count`` copies of one architecture with stacked parameters, evaluated in one vectorised call.

    Parameters
    ----------
    modules : sequence of nn.Module
        Modules with identical parameter names and shapes (typically independently initialised copies);
        their values are copied, so later changes to them do not affect this module.

    Attributes
    ----------
    members : nn.Module
        A copy of the architecture whose every parameter and buffer carries a leading dimension of size
        ``count`` (``members.layers.0.weight`` has shape ``(count, out, in)``); state-dict names are the
        architecture's own, prefixed by ``members.``.  Do not call it directly: use :meth:`forward` or
        :meth:`member`.

    Examples
    --------
    >>> import torch
    >>> from physml.nn.mlp import MLP
    >>> generator = torch.Generator().manual_seed(0)
    >>> ensemble = StackedModules.from_factory(lambda: MLP(2, 2, (8,), generator=generator), count=3)
    >>> x = torch.randn(3, 5, 2)
    >>> torch.allclose(ensemble(x)[1], ensemble.member(1)(x[1]), atol=1e-6)
    True
    """

    def __init__(self, modules: Sequence[nn.Module]):
        super().__init__()
        modules = list(modules)
        if not modules or not all(isinstance(module, nn.Module) for module in modules):
            raise TypeError(f"modules must be a non-empty sequence of nn.Module, got {modules!r}")
        _check_same_structure(modules)
        members = copy.deepcopy(modules[0])
        for name, parameter in modules[0].named_parameters():
            stacked = torch.stack([dict(module.named_parameters())[name].detach() for module in modules])
            stacked = nn.Parameter(stacked.clone(), requires_grad=parameter.requires_grad)
            _replace_tensor(members, name, stacked, is_parameter=True)
        for name, _ in modules[0].named_buffers():
            stacked = torch.stack([dict(module.named_buffers())[name] for module in modules])
            _replace_tensor(members, name, stacked.clone(), is_parameter=False)
        self.members = members
        self.count = len(modules)
        self._state_cache: dict[str, torch.Tensor] | None = None

    @classmethod
    def from_factory(cls, factory: Callable[[], nn.Module], count: int) -> StackedModules:
        """Stack ``count`` modules made by successive calls of ``factory`` (each its own initialisation)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        return cls([factory() for _ in range(count)])

    def stacked_parameters(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers by the architecture's names, each of shape ``(count, ...)``."""
        # Walking the module tree at every right-hand-side evaluation costs more than the small matrix
        # products themselves; the mapping only changes when tensors are replaced (``_apply``).
        if self._state_cache is None:
            self._state_cache = stacked_state(self.members)
        return self._state_cache

    def _apply(self, fn, recurse=True):
        self._state_cache = None
        return super()._apply(fn, recurse)

    def __setstate__(self, state):
        super().__setstate__(state)
        self._state_cache = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 1 or x.shape[0] != self.count:
            raise ValueError(
                f"StackedModules of {self.count} members needs inputs of shape ({self.count}, ...), got "
                f"{tuple(x.shape)}"
            )
        return self.plan()(x)

    def plan(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """:func:`stacked_plan` of the members: prepare once, evaluate many times with fixed parameters."""
        return stacked_plan(self.members, self.stacked_parameters())

    def member(self, index: int) -> nn.Module:
        """An independent ordinary module holding member ``index``'s parameters (a copy)."""
        if not -self.count <= index < self.count:
            raise IndexError(f"member index {index} out of range for {self.count} members")
        single = copy.deepcopy(self.members)
        for name, parameter in self.members.named_parameters():
            copied = nn.Parameter(parameter.detach()[index].clone(), requires_grad=parameter.requires_grad)
            _replace_tensor(single, name, copied, is_parameter=True)
        for name, buffer in self.members.named_buffers():
            _replace_tensor(single, name, buffer[index].clone(), is_parameter=False)
        return single

    def extra_repr(self) -> str:
        return f"count={self.count}"
