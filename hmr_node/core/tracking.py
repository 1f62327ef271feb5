"""Track ids for 2D detections that arrive without one (greedy IoU matching of keypoint boxes).

Detectors that already track (and the scenario's simulated detector) pass their ids through;
only detections with ``track_id < 0`` are matched here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrackerConfig:
    """min_iou: smallest box IoU that continues a track; max_age_s: a track unseen for longer is
    forgotten; first_id: ids this tracker assigns start here (kept apart from detector ids)."""

    min_iou: float = 0.3
    max_age_s: float = 1.0
    first_id: int = 1_000_000


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a: (N, 4), b: (M, 4) boxes (x_min, y_min, x_max, y_max) -> (N, M) IoU."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


class IouTracker:
    """Greedy highest-IoU-first association of boxes to the previous frame's tracks."""

    def __init__(self, config: TrackerConfig = TrackerConfig()):
        self.config = config
        self._boxes: dict[int, tuple[np.ndarray, float]] = {}  # id -> (box, last stamp)
        self._next = config.first_id

    def assign(self, boxes: np.ndarray, stamp: float) -> np.ndarray:
        """boxes: (N, 4) pixels of untracked detections; stamp: seconds -> (N,) track ids."""
        self._boxes = {k: v for k, v in self._boxes.items() if stamp - v[1] <= self.config.max_age_s}
        ids = np.full(len(boxes), -1, dtype=np.int64)
        if len(boxes) and self._boxes:
            keys = list(self._boxes)
            iou = box_iou(np.asarray(boxes, float), np.stack([self._boxes[k][0] for k in keys]))
            for flat in np.argsort(-iou, axis=None):
                i, j = np.unravel_index(flat, iou.shape)
                if iou[i, j] < self.config.min_iou:
                    break
                if ids[i] < 0 and keys[j] not in ids:
                    ids[i] = keys[j]
        for i in np.flatnonzero(ids < 0):
            ids[i] = self._next
            self._next += 1
        for i, k in enumerate(ids):
            self._boxes[int(k)] = (np.asarray(boxes[i], float), stamp)
        return ids
