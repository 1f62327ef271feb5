"""Evaluation metrics: pose, motion, world trajectory and latency.

Every metric accepts numpy arrays (float64 math) or torch tensors (differentiable) and
returns the same kind. Positions are in metres; each function returns the unit its name or
docstring states (pose errors in mm, trajectory errors in m, accelerations in mm/frame² or
m/s², jitter in m/s³, foot sliding in m/s, latencies in ms).

Modules: :mod:`.alignment` (Procrustes / rigid fits), :mod:`.pose` (MPJPE, PA-MPJPE,
MPVPE), :mod:`.motion` (acceleration error, jitter, foot sliding), :mod:`.trajectory`
(W-MPJPE, WA-MPJPE, root trajectory error), :mod:`.latency`.
"""
from hmr_node.core.metrics.alignment import (
    apply_similarity,
    fit_similarity,
    procrustes_align,
    rigid_align,
)
from hmr_node.core.metrics.latency import latency_percentiles
from hmr_node.core.metrics.motion import (
    DEFAULT_FOOT_JOINTS,
    accel_error,
    foot_contacts,
    foot_sliding,
    jitter,
)
from hmr_node.core.metrics.pose import (
    LSP14_HIP_INDICES,
    lsp14,
    mpjpe,
    mpvpe,
    pa_mpjpe,
    per_joint_errors,
)
from hmr_node.core.metrics.trajectory import root_trajectory_error, w_mpjpe, wa_mpjpe

__all__ = [
    "DEFAULT_FOOT_JOINTS",
    "LSP14_HIP_INDICES",
    "accel_error",
    "apply_similarity",
    "fit_similarity",
    "foot_contacts",
    "foot_sliding",
    "jitter",
    "latency_percentiles",
    "lsp14",
    "mpjpe",
    "mpvpe",
    "pa_mpjpe",
    "per_joint_errors",
    "procrustes_align",
    "rigid_align",
    "root_trajectory_error",
    "w_mpjpe",
    "wa_mpjpe",
]
