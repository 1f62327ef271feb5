"""Latency statistics for benchmark reports (input in seconds, output in milliseconds)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

S_TO_MS = 1000.0


def latency_percentiles(latencies_s, percentiles: Sequence[float] = (50, 90, 95, 99)) -> dict:
    """Percentiles, mean and max of measured latencies, in ms, as plain Python floats.

    Args:
        latencies_s: (N,) latencies in seconds (list, numpy array or torch tensor), N ≥ 1,
            finite and ≥ 0.
        percentiles: percentiles to report, each in [0, 100]; linear interpolation between
            samples (numpy's default method).

    Returns:
        ``{"p50_ms": ..., "p90_ms": ..., ..., "mean_ms": ..., "max_ms": ..., "count": N}``;
        percentile keys are ``f"p{p:g}_ms"`` (``p99.9_ms`` for 99.9).
    """
    if isinstance(latencies_s, torch.Tensor):
        latencies_s = latencies_s.detach().cpu().numpy()
    try:
        values = np.asarray(latencies_s, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"latencies_s must be numbers in seconds, got {latencies_s!r}") from error
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"latencies_s must have shape (N,) with N >= 1, got {values.shape}")
    invalid = ~np.isfinite(values) | (values < 0)
    if invalid.any():
        raise ValueError(f"latencies_s must be finite and >= 0 seconds, got "
                         f"{values[invalid][:5].tolist()} among {values.size} values")
    if isinstance(percentiles, (str, bytes)) or not isinstance(percentiles, Sequence):
        raise ValueError(f"percentiles must be a sequence of numbers, got {percentiles!r}")
    try:
        qs = [float(q) for q in percentiles]
    except (TypeError, ValueError) as error:
        raise ValueError(f"percentiles must be numbers in [0, 100], got {percentiles!r}") from error
    if any(not 0.0 <= q <= 100.0 for q in qs):
        raise ValueError(f"percentiles must be numbers in [0, 100], got {percentiles!r}")

    milliseconds = values * S_TO_MS
    stats = {f"p{q:g}_ms": float(np.percentile(milliseconds, q)) for q in qs}
    stats["mean_ms"] = float(milliseconds.mean())
    stats["max_ms"] = float(milliseconds.max())
    stats["count"] = int(values.size)
    return stats
