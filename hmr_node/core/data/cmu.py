"""CMU motion capture in the exponential-map text format, with its skeleton and kinematics.

Data: ``<cmu_root>/{train,eval}/<action>/<clip>.txt`` plus ``<cmu_root>/skeleton.json`` (see
the README there). Each line is one frame of 117 comma-separated values: the root (Hips)
position x, y, z in CMU skeleton units (y up), then one exponential map (axis * angle, rad)
for each of the 38 joints of the skeleton (end sites carry zeros). Frames are at 120 Hz.

Forward kinematics (README, row-vector convention, checked on ``train/walking/walking_1``)::

    G[0] = R(e[0]);  p[0] = root position
    G[i] = R(e[i]) @ G[parent[i]];  p[i] = offsets[i] @ G[parent[i]] + p[parent[i]]

In hmr_node's column-vector convention this is ``Gc[i] = Gc[parent] @ R(e[i]).T`` with
``Gc = G.T`` (``p[i] = Gc[parent] @ offsets[i] + p[parent]``), i.e. the local rotation of
joint ``i`` is ``R(-e[i])``. The CMU rest pose (all maps zero) is a T-pose in SMPL's
canonical orientation: y up, facing +z, the person's left towards +x.

Attribution (must travel with the data and anything derived from it): see
:data:`CMU_ATTRIBUTION`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from hmr_node.core.data.resample import resample_positions, resample_rotations

CMU_ATTRIBUTION = (
    "The data used in this project was obtained from mocap.cs.cmu.edu. "
    "The database was created with funding from NSF EIA-0196217. "
    "(CMU Graphics Lab Motion Capture Database; exponential-map subset of Li et al., CVPR 2018.)"
)
CMU_FPS = 120.0


@dataclass(frozen=True)
class CmuSkeleton:
    """The CMU skeleton of ``skeleton.json``.

    names: (J,) joint names, J = 38 (end sites included)
    parents: (J,) parent index, -1 for the root
    offsets: (J, 3) rest offsets from the parent, CMU units (row vectors, parent frame)
    units_to_metres: metres per CMU unit
    frame_rate_hz: rate of the clips
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    units_to_metres: float
    frame_rate_hz: float = CMU_FPS

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"joint name: {name!r} is not a CMU joint; known: {', '.join(self.names)}") from None


@dataclass(frozen=True)
class CmuClip:
    """One CMU exponential-map clip as read from disk.

    name: clip stem, e.g. 'walking_1'
    root_position: (T, 3) Hips position, CMU units, y up
    expmaps: (T, J, 3) exponential maps (rad) in the skeleton's joint order
    fps: frame rate, Hz
    """

    name: str
    root_position: np.ndarray
    expmaps: np.ndarray
    fps: float = CMU_FPS

    @property
    def num_frames(self) -> int:
        return int(self.root_position.shape[0])


def load_cmu_skeleton(path: str | os.PathLike) -> CmuSkeleton:
    """Read ``skeleton.json``.

    path: the json file, or the CMU data directory that holds it
    """
    p = Path(path)
    if p.is_dir():
        p = p / "skeleton.json"
    if not p.is_file():
        raise FileNotFoundError(f"path: CMU skeleton file not found: {p}")
    with open(p) as fh:
        d = json.load(fh)
    for key in ("joints", "parents", "offsets", "units_to_metres"):
        if key not in d:
            raise ValueError(f"path: {p} has no {key!r} field")
    names = tuple(str(n) for n in d["joints"])
    parents = tuple(int(i) for i in d["parents"])
    offsets = np.asarray(d["offsets"], dtype=np.float64)
    if len(parents) != len(names) or offsets.shape != (len(names), 3):
        raise ValueError(f"path: {p}: {len(names)} joints but {len(parents)} parents and offsets {offsets.shape}")
    if parents[0] != -1 or any(not (0 <= parents[i] < i) for i in range(1, len(parents))):
        raise ValueError(f"path: {p}: parents must be -1 for joint 0 and precede each joint, got {parents}")
    return CmuSkeleton(names, parents, offsets, float(d["units_to_metres"]),
                       float(d.get("frame_rate_hz", CMU_FPS)))


def read_cmu_clip(path: str | os.PathLike, skeleton: CmuSkeleton) -> CmuClip:
    """Read one exponential-map text clip.

    path: the ``.txt`` file (comma-separated, 3 + 3 J values per line)
    skeleton: the skeleton the clip belongs to (fixes J)
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"path: CMU clip not found: {p}")
    ncols = 3 + 3 * skeleton.num_joints
    rows = []
    with open(p) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            parts = line.rstrip(",").split(",")
            if len(parts) != ncols:
                raise ValueError(f"{p}:{lineno}: expected {ncols} values, got {len(parts)}")
            try:
                rows.append([float(v) for v in parts])
            except ValueError as exc:
                raise ValueError(f"{p}:{lineno}: non-numeric value ({exc})") from None
    if not rows:
        raise ValueError(f"{p}: no frames")
    data = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{p}: non-finite values")
    return CmuClip(p.stem, data[:, :3], data[:, 3:].reshape(-1, skeleton.num_joints, 3), skeleton.frame_rate_hz)


def leading_rest_frames(clip: CmuClip, jump_rad: float = 0.5) -> int:
    """How many leading frames are the conversion's fixed start pose rather than motion.

    Every clip of this dataset starts with the same fixed pose (identical joint maps in all
    clips), followed by a jump of more than a radian into the captured motion. The leading
    run of frames equal to frame 0 is that pose when the next frame jumps by more than
    ``jump_rad`` (max over joints, root excluded); otherwise 0.
    """
    e = clip.expmaps[:, 1:]
    n = 1
    while n < e.shape[0] and np.abs(e[n] - e[0]).max() < 1e-9:
        n += 1
    if n >= e.shape[0]:
        return 0
    return n if np.abs(e[n] - e[n - 1]).max() > jump_rad else 0


def trim_rest_frames(clip: CmuClip) -> CmuClip:
    """The clip without its leading start-pose frames (:func:`leading_rest_frames`)."""
    n = leading_rest_frames(clip)
    return CmuClip(clip.name, clip.root_position[n:], clip.expmaps[n:], clip.fps) if n else clip


def local_rotations(expmaps: np.ndarray) -> np.ndarray:
    """Column-convention parent-relative rotations of a clip.

    expmaps: (T, J, 3) CMU exponential maps
    returns: (T, J, 3, 3) ``R(e).T`` (see module docstring)
    """
    e = np.asarray(expmaps, dtype=np.float64)
    R = Rotation.from_rotvec(e.reshape(-1, 3)).as_matrix().reshape(e.shape[:-1] + (3, 3))
    return np.swapaxes(R, -1, -2)


def forward_kinematics(
    skeleton: CmuSkeleton, root_position: np.ndarray, local_rot: np.ndarray, metres: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised CMU forward kinematics (column vectors).

    skeleton: the CMU skeleton (offsets, parents)
    root_position: (T, 3) Hips position, CMU units
    local_rot: (T, J, 3, 3) parent-relative rotations from :func:`local_rotations`
    metres: scale positions to metres (else CMU units)
    returns: positions (T, J, 3) and global rotations (T, J, 3, 3) (column convention; the
        global rotation of joint i orients the bones from i to its children)
    """
    root_position = np.asarray(root_position, dtype=np.float64)
    T, J = local_rot.shape[:2]
    if J != skeleton.num_joints or root_position.shape != (T, 3):
        raise ValueError(f"local_rot/root_position: expected (T, {skeleton.num_joints}, 3, 3)/(T, 3), "
                         f"got {local_rot.shape}/{root_position.shape}")
    G = np.empty_like(local_rot)
    P = np.empty((T, J, 3))
    G[:, 0] = local_rot[:, 0]
    P[:, 0] = root_position
    for i in range(1, J):
        par = skeleton.parents[i]
        G[:, i] = G[:, par] @ local_rot[:, i]
        P[:, i] = P[:, par] + G[:, par] @ skeleton.offsets[i]
    if metres:
        P = P * skeleton.units_to_metres
    return P, G


def clip_joint_positions(clip: CmuClip, skeleton: CmuSkeleton, fps: float | None = None) -> np.ndarray:
    """Joint positions of a clip in metres (y up), optionally resampled.

    clip: a clip from :func:`read_cmu_clip`
    skeleton: its skeleton
    fps: target rate (None = the clip's own)
    returns: (T', J, 3) metres
    """
    root, R = resample_clip(clip, fps) if fps is not None else (clip.root_position, local_rotations(clip.expmaps))
    P, _ = forward_kinematics(skeleton, root, R)
    return P


def resample_clip(clip: CmuClip, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Root position (linear) and local rotations (slerp) at ``fps``.

    clip: a clip from :func:`read_cmu_clip`
    fps: target rate, Hz
    returns: root position (T', 3) CMU units, local rotations (T', J, 3, 3)
    """
    R = local_rotations(clip.expmaps)
    if abs(fps - clip.fps) < 1e-9:
        return clip.root_position.copy(), R
    return resample_positions(clip.root_position, clip.fps, fps), resample_rotations(R, clip.fps, fps)


def bone_lengths(skeleton: CmuSkeleton, positions: np.ndarray) -> np.ndarray:
    """positions: (T, J, 3) -> (T, J) distance of each joint to its parent (0 for the root)."""
    par = np.array([max(p, 0) for p in skeleton.parents])
    return np.linalg.norm(positions - positions[:, par], axis=-1)
