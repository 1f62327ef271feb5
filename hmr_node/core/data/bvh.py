"""BVH (Biovision hierarchy) motion files: parser, forward kinematics and writer.

Format
    ``HIERARCHY`` then ``ROOT``/``JOINT`` blocks with ``OFFSET x y z``, ``CHANNELS n ...`` and
    nested joints or an ``End Site { OFFSET ... }``; then ``MOTION``, ``Frames: N``,
    ``Frame Time: dt`` and N lines of as many numbers as there are channels, in hierarchy order.

Conventions used here (those of the CMU conversion and of common exporters)
    * rotation channels are Euler angles in degrees, applied in the listed order as intrinsic
      rotations about the joint's local axes: ``Zrotation Yrotation Xrotation`` gives
      ``R = Rz(z) @ Ry(y) @ Rx(x)`` (column vectors); any order is accepted;
    * position channels *replace* the joint's OFFSET (exporters write the absolute local
      translation there), other coordinates keep the OFFSET value;
    * FK with column vectors: ``G[i] = G[parent] @ R[i]``,
      ``p[i] = p[parent] + G[parent] @ t[i]`` (``t[i]`` = OFFSET or position channels).
    * End Sites are joints without channels or children, named ``<parent>_End``.

Every format problem raises one ``ValueError`` that names the file, the line number and the
problem. The CMU conversion (B. Hahne) stores its rest pose on the first motion line; use
``skip_first_frame=True`` to drop it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

_AXES = {"Xrotation": "X", "Yrotation": "Y", "Zrotation": "Z"}
_POS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}


@dataclass(frozen=True)
class BvhSkeleton:
    """A BVH hierarchy.

    names: (J,) joint names, End Sites included (``<parent>_End``)
    parents: (J,) parent index, -1 for the root; parents precede children
    offsets: (J, 3) rest offsets from the parent, file units
    channels: (J,) tuple of channel names per joint (empty for End Sites)
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"joint name: {name!r} is not in the BVH skeleton; known: {', '.join(self.names)}") from None

    def children(self, j: int) -> list[int]:
        return [i for i, p in enumerate(self.parents) if p == j]


@dataclass(frozen=True)
class BvhMotion:
    """A parsed BVH file.

    skeleton: the hierarchy
    local_rotations: (T, J, 3, 3) parent-relative rotations (identity where no channels)
    translations: (T, J, 3) local translations (OFFSET, replaced by position channels), file units
    frame_time: seconds per frame
    source: path of the file
    """

    skeleton: BvhSkeleton
    local_rotations: np.ndarray
    translations: np.ndarray
    frame_time: float
    source: str = ""

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def num_frames(self) -> int:
        return int(self.local_rotations.shape[0])

    @property
    def root_positions(self) -> np.ndarray:
        """(T, 3) root translation, file units."""
        return self.translations[:, 0]


class _Tokens:
    """Whitespace tokens with their line numbers, for error messages."""

    def __init__(self, path: str, lines: list[str], start: int, stop: int):
        self.path = path
        self.items: list[tuple[str, int]] = []
        for n in range(start, stop):
            for tok in lines[n].replace("{", " { ").replace("}", " } ").split():
                self.items.append((tok, n + 1))
        self.pos = 0
        self.last_line = stop

    def error(self, msg: str, line: int | None = None) -> ValueError:
        if line is None:
            line = self.items[self.pos][1] if self.pos < len(self.items) else self.last_line
        return ValueError(f"{self.path}:{line}: {msg}")

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise self.error(f"unexpected end of HIERARCHY, expected {what}")
        tok = self.items[self.pos]
        self.pos += 1
        return tok

    def expect(self, word: str) -> int:
        tok, line = self.next(repr(word))
        if tok != word:
            raise self.error(f"expected {word!r}, got {tok!r}", line)
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            return float(tok)
        except ValueError:
            raise self.error(f"non-numeric {what} {tok!r}", line) from None


def _parse_hierarchy(tk: _Tokens) -> BvhSkeleton:
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []

    def joint_block(name: str, parent: int, end_site: bool = False) -> None:
        me = len(names)
        names.append(name)
        parents.append(parent)
        tk.expect("{")
        tk.expect("OFFSET")
        offsets.append([tk.number("OFFSET value") for _ in range(3)])
        chans: tuple[str, ...] = ()
        if not end_site:
            tk.expect("CHANNELS")
            n_tok, line = tk.next("channel count")
            if not n_tok.isdigit():
                raise tk.error(f"non-numeric channel count {n_tok!r} for joint {name!r}", line)
            chans = tuple(tk.next("channel name")[0] for _ in range(int(n_tok)))
            for c in chans:
                if c not in _AXES and c not in _POS:
                    raise tk.error(f"unknown channel {c!r} for joint {name!r}", line)
        channels.append(chans)
        while True:
            tok, line = tk.next("'JOINT', 'End Site' or '}'")
            if tok == "}":
                return
            if tok == "JOINT":
                child, _ = tk.next("joint name")
                joint_block(child, me)
            elif tok == "End":
                tk.expect("Site")
                joint_block(name + "_End", me, end_site=True)
            else:
                raise tk.error(f"expected 'JOINT', 'End Site' or '}}' in joint {name!r}, got {tok!r}", line)

    tk.expect("HIERARCHY")
    tk.expect("ROOT")
    root, _ = tk.next("root name")
    joint_block(root, -1)
    if tk.pos != len(tk.items):
        tok, line = tk.items[tk.pos]
        raise tk.error(f"unexpected {tok!r} after the root joint (one ROOT per file)", line)
    return BvhSkeleton(tuple(names), tuple(parents), np.asarray(offsets, dtype=np.float64), tuple(channels))


def parse_bvh(text: str, path: str = "<string>", skip_first_frame: bool = False) -> BvhMotion:
    """Parse BVH text (see :func:`read_bvh`)."""
    lines = text.splitlines()
    motion_idx = next((i for i, l in enumerate(lines) if l.strip() == "MOTION"), None)
    if not any(l.strip() == "HIERARCHY" for l in lines[: motion_idx if motion_idx is not None else len(lines)]):
        raise ValueError(f"{path}:1: missing HIERARCHY section")
    if motion_idx is None:
        raise ValueError(f"{path}:{len(lines)}: missing MOTION section")
    skel = _parse_hierarchy(_Tokens(path, lines, 0, motion_idx))

    def header(idx: int, key: str) -> str:
        if idx >= len(lines):
            raise ValueError(f"{path}:{idx + 1}: truncated MOTION section, expected {key!r}")
        line = lines[idx].strip()
        if not line.startswith(key):
            raise ValueError(f"{path}:{idx + 1}: expected {key!r}, got {line[:40]!r}")
        return line[len(key):].strip()

    n_str = header(motion_idx + 1, "Frames:")
    try:
        n_frames = int(n_str)
    except ValueError:
        raise ValueError(f"{path}:{motion_idx + 2}: non-numeric frame count {n_str!r}") from None
    dt_str = header(motion_idx + 2, "Frame Time:")
    try:
        frame_time = float(dt_str)
    except ValueError:
        raise ValueError(f"{path}:{motion_idx + 3}: non-numeric frame time {dt_str!r}") from None
    if n_frames < 1 or not frame_time > 0:
        raise ValueError(f"{path}:{motion_idx + 2}: need Frames >= 1 and Frame Time > 0, got {n_frames}, {frame_time}")

    first = motion_idx + 3
    body = lines[first:]
    while body and not body[-1].strip():
        body.pop()
    n_chan = skel.num_channels
    if len(body) < n_frames:
        raise ValueError(f"{path}:{first + len(body)}: truncated motion: header says {n_frames} frames, "
                         f"file has {len(body)}")
    if len(body) > n_frames:
        raise ValueError(f"{path}:{first + n_frames + 1}: {len(body) - n_frames} motion lines beyond the "
                         f"{n_frames} frames of the header")
    data = np.empty((n_frames, n_chan))
    for k, line in enumerate(body):
        parts = line.split()
        if len(parts) != n_chan:
            raise ValueError(f"{path}:{first + k + 1}: motion line has {len(parts)} values, the hierarchy has "
                             f"{n_chan} channels")
        try:
            data[k] = [float(v) for v in parts]
        except ValueError as exc:
            raise ValueError(f"{path}:{first + k + 1}: non-numeric value on motion line ({exc})") from None
    if not np.all(np.isfinite(data)):
        k = int(np.flatnonzero(~np.all(np.isfinite(data), axis=1))[0])
        raise ValueError(f"{path}:{first + k + 1}: non-finite value on motion line")
    if skip_first_frame:
        if n_frames < 2:
            raise ValueError(f"{path}:{first + 1}: skip_first_frame needs at least 2 frames, got {n_frames}")
        data = data[1:]
    rot, trans = _channels_to_local(skel, data)
    return BvhMotion(skel, rot, trans, frame_time, path)


def read_bvh(path: str | os.PathLike, skip_first_frame: bool = False) -> BvhMotion:
    """Read a BVH file.

    path: the ``.bvh`` file
    skip_first_frame: drop the first motion line (the rest pose in the CMU conversion)
    returns: :class:`BvhMotion` with local rotations and translations per frame
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"path: BVH file not found: {p}")
    return parse_bvh(p.read_text(), str(p), skip_first_frame)


def _channels_to_local(skel: BvhSkeleton, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """data: (T, C) channel values -> local rotations (T, J, 3, 3), translations (T, J, 3)."""
    T, J = data.shape[0], skel.num_joints
    rot = np.broadcast_to(np.eye(3), (T, J, 3, 3)).copy()
    trans = np.broadcast_to(skel.offsets, (T, J, 3)).copy()
    col = 0
    for j, chans in enumerate(skel.channels):
        order = "".join(_AXES[c] for c in chans if c in _AXES)
        rcols = [col + k for k, c in enumerate(chans) if c in _AXES]
        for k, c in enumerate(chans):
            if c in _POS:
                trans[:, j, _POS[c]] = data[:, col + k]
        if order:
            # upper-case = intrinsic rotations in the listed order: R = R_a(1) @ R_b(2) @ ...
            rot[:, j] = Rotation.from_euler(order, data[:, rcols], degrees=True).as_matrix()
        col += len(chans)
    return rot, trans


def bvh_forward_kinematics(motion: BvhMotion, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions and rotations (column vectors).

    motion: a parsed file
    scale: multiply positions by this (e.g. CMU units -> metres: 0.056444)
    returns: positions (T, J, 3) and global rotations (T, J, 3, 3)
    """
    skel = motion.skeleton
    R, t = motion.local_rotations, motion.translations
    G = np.empty_like(R)
    P = np.empty(t.shape)
    for j, par in enumerate(skel.parents):
        if par < 0:
            G[:, j] = R[:, j]
            P[:, j] = t[:, j]
        else:
            G[:, j] = G[:, par] @ R[:, j]
            P[:, j] = P[:, par] + np.einsum("tab,tb->ta", G[:, par], t[:, j])
    return P * scale, G


def format_bvh(skeleton: BvhSkeleton, local_rotations: np.ndarray, translations: np.ndarray,
               frame_time: float, precision: int = 6) -> str:
    """BVH text for a motion on ``skeleton`` (inverse of :func:`parse_bvh`).

    Joints are written depth first (children in index order), so parsing the text returns
    them in that order, which differs from ``skeleton``'s when it is not depth first (SMPL's).

    skeleton: hierarchy; its channel lists fix what is written (any Euler order)
    local_rotations: (T, J, 3, 3) parent-relative rotations
    translations: (T, J, 3) local translations (written for joints with position channels)
    frame_time: seconds per frame
    precision: decimals of the written values
    """
    T, J = local_rotations.shape[:2]
    if J != skeleton.num_joints or translations.shape != (T, J, 3):
        raise ValueError(f"local_rotations/translations: expected (T, {skeleton.num_joints}, 3, 3)/(T, J, 3), "
                         f"got {local_rotations.shape}/{translations.shape}")
    out = ["HIERARCHY"]
    order: list[int] = []  # joints in the order the hierarchy is written (depth first)

    def block(j: int, depth: int) -> None:
        order.append(j)
        ind = "\t" * depth
        name = skeleton.names[j]
        par = skeleton.parents[j]
        if not skeleton.channels[j] and par >= 0 and not skeleton.children(j):
            out.append(f"{ind}End Site")
        else:
            out.append(f"{ind}{'ROOT' if par < 0 else 'JOINT'} {name}")
        out.append(ind + "{")
        out.append(ind + "\tOFFSET " + " ".join(f"{v:.{precision}f}" for v in skeleton.offsets[j]))
        if skeleton.channels[j]:
            out.append(ind + f"\tCHANNELS {len(skeleton.channels[j])} " + " ".join(skeleton.channels[j]))
        for c in skeleton.children(j):
            block(c, depth + 1)
        out.append(ind + "}")

    block(0, 0)
    out += ["MOTION", f"Frames: {T}", f"Frame Time: {frame_time:.7f}"]
    if sorted(order) != list(range(J)):
        raise ValueError(f"skeleton: parents {skeleton.parents} do not form one tree rooted at joint 0")
    cols = []
    for j in order:  # motion columns follow the written hierarchy
        chans = skeleton.channels[j]
        seq = "".join(_AXES[c] for c in chans if c in _AXES)
        ang = Rotation.from_matrix(local_rotations[:, j]).as_euler(seq, degrees=True) if seq else None
        k_rot = 0
        for c in chans:
            if c in _POS:
                cols.append(translations[:, j, _POS[c]])
            else:
                cols.append(ang[:, k_rot])
                k_rot += 1
    data = np.stack(cols, axis=1) if cols else np.zeros((T, 0))
    out += [" ".join(f"{v:.{precision}f}" for v in row) for row in data]
    return "\n".join(out) + "\n"


def write_bvh(path: str | os.PathLike, skeleton: BvhSkeleton, local_rotations: np.ndarray,
              translations: np.ndarray, frame_time: float, precision: int = 6) -> None:
    """Write :func:`format_bvh` output to ``path``."""
    Path(path).write_text(format_bvh(skeleton, local_rotations, translations, frame_time, precision))


def _angle_between(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Rotation angle (deg) of A^T B for (..., 3, 3) stacks."""
    c = (np.trace(np.swapaxes(A, -1, -2) @ B, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def despike_rotations(local_rotations: np.ndarray, threshold_deg: float = 20.0, neighbour_deg: float = 10.0
                      ) -> tuple[np.ndarray, int]:
    """Replace one-frame spikes (as in some CMU BVH toe/finger channels) by the neighbours' midpoint.

    A frame t of joint j is a spike when it is more than ``threshold_deg`` from both neighbours
    while the neighbours are within ``neighbour_deg`` of each other. Euler flips are not spikes:
    rotations are compared as matrices, where a flip near 90 degrees is continuous.

    local_rotations: (T, J, 3, 3)
    returns: (despiked copy, number of replaced joint-frames)
    """
    R = np.array(local_rotations, dtype=np.float64, copy=True)
    if R.shape[0] < 3:
        return R, 0
    prev, cur, nxt = R[:-2], R[1:-1], R[2:]
    spike = ((np.minimum(_angle_between(cur, prev), _angle_between(cur, nxt)) > threshold_deg)
             & (_angle_between(prev, nxt) < neighbour_deg))
    t, j = np.nonzero(spike)
    if t.size:
        mid = Rotation.from_matrix(prev[t, j]) * Rotation.from_rotvec(
            0.5 * (Rotation.from_matrix(prev[t, j]).inv() * Rotation.from_matrix(nxt[t, j])).as_rotvec())
        R[t + 1, j] = mid.as_matrix()
    return R, int(t.size)
