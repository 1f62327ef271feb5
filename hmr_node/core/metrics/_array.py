"""numpy/torch dispatch and shape checks shared by the metric modules.

Metrics are written once, in torch. A public metric converts its inputs with
:func:`as_float_tensors` (numpy → float64 tensors sharing memory; torch tensors are kept as
they are, so autograd and the device are preserved), computes, and hands the result back
with :func:`restore_kind`: numpy in → numpy out (a numpy scalar for 0-d results), torch in →
torch out.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def as_float_tensors(*named: tuple[str, object]) -> tuple[list[torch.Tensor], bool]:
    """Convert ``(name, array)`` pairs to floating tensors of one dtype and device.

    Returns:
        the tensors, in order, and whether any input was a torch tensor. If one was, numpy
        inputs are converted to the first tensor's dtype (float32 if it is not floating) and
        device; otherwise everything is float64.
    """
    ref = next((value for _, value in named if isinstance(value, torch.Tensor)), None)
    if ref is None:
        dtype, device = torch.float64, None
    else:
        dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
        device = ref.device
    tensors = []
    for name, value in named:
        if isinstance(value, torch.Tensor):
            tensors.append(value if value.dtype == dtype else value.to(dtype))
            continue
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"{name} must be a numeric numpy array or torch tensor, got "
                f"{type(value).__name__}: {error}") from error
        tensors.append(torch.as_tensor(array, dtype=dtype, device=device))
    return tensors, ref is not None


def restore_kind(value: torch.Tensor, is_torch: bool):
    """``value`` as the caller's kind: the tensor itself, or numpy (a numpy scalar if 0-d)."""
    if is_torch:
        return value
    return value.detach().cpu().numpy()[()]


def check_points(name: str, value: torch.Tensor, layout: str, min_ndim: int = 2,
                 dim: int | None = 3) -> None:
    """Raise ``ValueError`` unless ``value`` has ``min_ndim`` dims, last one ``dim``, no empty axis.

    Args:
        name: the argument's name, for the message.
        value: (..., N, dim) tensor.
        layout: the expected shape as written in the docstring, e.g. ``"(..., J, 3)"``.
        min_ndim: least number of dimensions.
        dim: required size of the last axis, or None for any.
    """
    shape = tuple(value.shape)
    if (value.ndim < min_ndim or (dim is not None and shape[-1] != dim)
            or any(size == 0 for size in shape[-min_ndim:])):
        raise ValueError(f"{name} must have shape {layout}, got {shape}")


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape (no broadcasting)."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}")


def check_indices(name: str, indices: Sequence[int], size: int) -> list[int]:
    """``indices`` as a list of ints, each in ``[-size, size)``; ``ValueError`` otherwise."""
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence) or not indices:
        raise ValueError(f"{name} must be a non-empty sequence of joint indices, got {indices!r}")
    out = []
    for index in indices:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise ValueError(f"{name} must hold ints, got {index!r} in {indices!r}")
        if not -size <= int(index) < size:
            raise ValueError(f"{name} holds index {int(index)}, out of range for {size} joints")
        out.append(int(index))
    return out


def check_positive(name: str, value: float) -> float:
    """``value`` as a float if it is a finite number > 0; ``ValueError`` otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from error
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number
