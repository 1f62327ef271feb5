"""Fixed-length windows of SMPL motion for training and evaluation (a torch ``Dataset``).

Each item is a dict of tensors for ``window`` consecutive frames at ``fps``::

    global_orient (T, 3), body_pose (T, 23, 3), transl (T, 3)   axis-angle / metres, y-up world
    betas (10,), clip_id () long (index into ``dataset.clip_names``), start () long (first frame),
    mirrored () bool

A dataset is built from a list of motion names of **one** split (``split=`` checks it against
:func:`hmr_node.core.data.registry.list_motions`), so train and eval windows never come from
the same clip. Mirroring augmentation (:mod:`hmr_node.core.data.mirror`) is exact for
left/right symmetric bodies (the shipped body and SMPL: rest pelvis on x = 0).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from hmr_node.core.data.mirror import mirror_smpl_params
from hmr_node.core.data.motion import MotionClip
from hmr_node.core.data.registry import list_motions, load_motion


@dataclass(frozen=True)
class WindowConfig:
    """window: frames per item (T); stride: frames between window starts; fps: rate, Hz;
    mirror: 'none', 'both' (every window also mirrored, dataset twice as long) or 'random'
    (each item mirrored with probability 1/2, drawn from (seed, epoch, index)); seed: for
    'random' and for synthetic motion."""

    window: int = 64
    stride: int = 16
    fps: float = 30.0
    mirror: str = "none"
    seed: int = 0


class MotionWindows(Dataset):
    """Windows over a list of motions.

    names: registry names of the motions (all of one split)
    config: see :class:`WindowConfig`
    split: 'train' or 'eval' to check every name belongs to it (None = no check)
    loader: ``loader(name, fps=..., seed=...) -> MotionClip`` (default: the registry's load_motion)
    """

    def __init__(self, names: Sequence[str], config: WindowConfig = WindowConfig(), split: str | None = None,
                 loader: Callable[..., MotionClip] = load_motion):
        if config.window < 1 or config.stride < 1:
            raise ValueError(f"config: window and stride must be >= 1, got {config.window}, {config.stride}")
        if config.mirror not in ("none", "both", "random"):
            raise ValueError(f"config.mirror: expected 'none', 'both' or 'random', got {config.mirror!r}")
        names = list(names)
        if len(set(names)) != len(names):
            raise ValueError(f"names: duplicates {sorted({n for n in names if names.count(n) > 1})}")
        if split is not None:
            allowed = set(list_motions(split))
            foreign = [n for n in names if n not in allowed]
            if foreign:
                raise ValueError(f"names: not in split {split!r}: {foreign[:5]}{' ...' if len(foreign) > 5 else ''}")
        self.config = config
        self.clip_names: list[str] = names
        self.clips: list[MotionClip] = [loader(n, fps=config.fps, seed=config.seed) for n in names]
        self.epoch = 0
        index = []
        for ci, clip in enumerate(self.clips):
            for start in range(0, clip.num_frames - config.window + 1, config.stride):
                index.append((ci, start))
        self._index = np.array(index, dtype=np.int64).reshape(-1, 2)

    @classmethod
    def from_split(cls, split: str, config: WindowConfig = WindowConfig()) -> "MotionWindows":
        """All motions of a split (see :func:`list_motions`)."""
        return cls(list_motions(split), config, split=split)

    def set_epoch(self, epoch: int) -> None:
        """Reseed 'random' mirroring for a new epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = self._index.shape[0]
        return 2 * n if self.config.mirror == "both" else n

    def _mirrored(self, i: int) -> bool:
        if self.config.mirror == "both":
            return i >= self._index.shape[0]
        if self.config.mirror == "random":
            return bool(np.random.default_rng([self.config.seed, self.epoch, i]).random() < 0.5)
        return False

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} windows")
        i = i % len(self)
        mirrored = self._mirrored(i)
        ci, start = self._index[i % self._index.shape[0]]
        clip = self.clips[ci]
        sl = slice(start, start + self.config.window)
        go, bp, tr = clip.global_orient[sl], clip.body_pose[sl], clip.transl[sl]
        if mirrored:
            go, bp, tr = mirror_smpl_params(go, bp, tr)
        f32 = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32))  # noqa: E731
        return {
            "global_orient": f32(go), "body_pose": f32(bp), "transl": f32(tr), "betas": f32(clip.betas),
            "clip_id": torch.tensor(int(ci)), "start": torch.tensor(int(start)), "mirrored": torch.tensor(mirrored),
        }
