"""Procedural SMPL motion for coverage: walk, turn, reach, crouch, varied by a seed.

This is *synthetic* motion, labelled as such everywhere (``synthetic=True``,
``source='synthetic'``, the word "synthetic" in the attribution): smooth periodic or
keyframed joint angles, not captured human motion. It fills gaps of the real data (turning
on the spot, reaching, deep crouches); foot contacts are approximate (every frame's lowest
foot touches the floor, feet may slide).

Joint angles are intrinsic Euler angles ``(x, y, z)`` about each joint's local axes in SMPL's
rest T-pose (y up, facing +z, person's left +x), composed in the per-joint order of
:data:`EULER_ORDER` with the joint's large motion first, so that the decomposition is unique
inside the limits (``XYZ``: ``R = Rx(x) @ Ry(y) @ Rz(z)``; shoulders ``ZYX``, elbows ``YXZ``). Signs, for the
left side: hip flexion (thigh forward) is ``-x``, knee flexion ``+x``, ankle dorsiflexion
``-x``, spine flexion (bend forward) ``+x``; left shoulder ``z < 0`` lowers the arm,
``y < 0`` swings it forward; left elbow flexion is ``y < 0``. The right side is the mirror
image (``(x, y, z) -> (x, -y, -z)``). Every generated angle lies inside :data:`JOINT_LIMITS`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from hmr_node.core.body.model import BodyModel, load_body_model
from hmr_node.core.body.skeleton import SMPL_JOINT_NAMES
from hmr_node.core.data.ground import place_on_floor
from hmr_node.core.data.motion import MotionClip

PROCEDURAL_KINDS: tuple[str, ...] = ("walk", "turn", "reach", "crouch")
SYNTHETIC_ATTRIBUTION = "synthetic motion from hmr_node's procedural generator (not captured human motion)"

# (low, high) per local axis x, y, z in radians, for the person's left and centre joints;
# right joints are the mirror image. Conservative ranges of adult active motion.
_LEFT_AND_CENTRE_LIMITS: dict[str, tuple[tuple[float, float], ...]] = {
    "left_hip": ((-2.0, 0.5), (-0.6, 0.6), (-0.5, 0.8)),
    "left_knee": ((0.0, 2.4), (-0.15, 0.15), (-0.15, 0.15)),
    "left_ankle": ((-0.8, 0.8), (-0.4, 0.4), (-0.4, 0.4)),
    "left_foot": ((-0.5, 0.5), (-0.2, 0.2), (-0.2, 0.2)),
    "spine1": ((-0.4, 0.7), (-0.5, 0.5), (-0.4, 0.4)),
    "spine2": ((-0.3, 0.5), (-0.4, 0.4), (-0.3, 0.3)),
    "spine3": ((-0.3, 0.5), (-0.4, 0.4), (-0.3, 0.3)),
    "neck": ((-0.5, 0.6), (-0.7, 0.7), (-0.4, 0.4)),
    "head": ((-0.4, 0.5), (-0.5, 0.5), (-0.3, 0.3)),
    "left_collar": ((-0.3, 0.3), (-0.3, 0.3), (-0.3, 0.3)),
    "left_shoulder": ((-1.2, 1.2), (-1.5, 0.6), (-1.6, 1.4)),
    "left_elbow": ((-0.6, 0.6), (-2.5, 0.0), (-0.1, 0.1)),
    "left_wrist": ((-0.6, 0.6), (-0.6, 0.6), (-0.6, 0.6)),
    "left_hand": ((-0.3, 0.3), (-0.3, 0.3), (-0.3, 0.3)),
}


def _joint_limits() -> np.ndarray:
    lim = np.zeros((24, 3, 2))
    lim[0] = [[-np.pi, np.pi]] * 3  # the root is free
    for j, name in enumerate(SMPL_JOINT_NAMES[1:], start=1):
        if name in _LEFT_AND_CENTRE_LIMITS:
            lim[j] = _LEFT_AND_CENTRE_LIMITS[name]
        else:  # right_*: mirror of left_* -> x kept, y and z negated (and swapped low/high)
            left = np.array(_LEFT_AND_CENTRE_LIMITS["left_" + name[len("right_"):]])
            lim[j, 0] = left[0]
            lim[j, 1:] = -left[1:, ::-1]
    return lim


JOINT_LIMITS: np.ndarray = _joint_limits()  # (24, 3, 2) radians, Euler (x, y, z) per joint, (low, high)


# intrinsic Euler order per SMPL joint: the axis of the largest range first
EULER_ORDER: tuple[str, ...] = tuple(
    "ZYX" if n.endswith("_shoulder") else "YXZ" if n.endswith("_elbow") else "XYZ" for n in SMPL_JOINT_NAMES
)
_AXIS = {"X": 0, "Y": 1, "Z": 2}


def euler_to_axis_angle(euler: np.ndarray) -> np.ndarray:
    """euler: (T, 23, 3) angles (x, y, z) of the body joints (rad), composed in EULER_ORDER -> (T, 23, 3) axis-angle."""
    e = np.asarray(euler, dtype=np.float64)
    if e.ndim != 3 or e.shape[1:] != (23, 3):
        raise ValueError(f"euler: expected (T, 23, 3), got {e.shape}")
    out = np.empty_like(e)
    for j in range(23):
        order = EULER_ORDER[j + 1]
        out[:, j] = Rotation.from_euler(order, e[:, j, [_AXIS[a] for a in order]]).as_rotvec()
    return out


def axis_angle_to_euler(axis_angle: np.ndarray) -> np.ndarray:
    """axis_angle: (T, 23, 3) -> (T, 23, 3) angles (x, y, z) in EULER_ORDER, middle angle in [-pi/2, pi/2]."""
    a = np.asarray(axis_angle, dtype=np.float64)
    if a.ndim != 3 or a.shape[1:] != (23, 3):
        raise ValueError(f"axis_angle: expected (T, 23, 3), got {a.shape}")
    out = np.empty_like(a)
    for j in range(23):
        order = EULER_ORDER[j + 1]
        out[:, j, [_AXIS[c] for c in order]] = Rotation.from_rotvec(a[:, j]).as_euler(order)
    return out


def within_joint_limits(body_pose: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """body_pose: (T, 23, 3) axis-angle -> (T, 23) True where the Euler angles are inside the limits."""
    e = axis_angle_to_euler(body_pose)
    lim = JOINT_LIMITS[1:]
    return np.all((e >= lim[..., 0] - tol) & (e <= lim[..., 1] + tol), axis=-1)


@dataclass(frozen=True)
class ProceduralConfig:
    """duration_s: clip length, seconds; fps: frame rate, Hz."""

    duration_s: float = 8.0
    fps: float = 30.0


def _idx(name: str) -> int:
    return SMPL_JOINT_NAMES.index(name)


def _mirror_euler(e: np.ndarray) -> np.ndarray:
    return e * np.array([1.0, -1.0, -1.0])


def _smooth_keyframes(rng: np.random.Generator, t: np.ndarray, period: tuple[float, float], low: float,
                      high: float) -> np.ndarray:
    """A smooth random signal in [low, high]: cosine blends between random holds."""
    keys_t = [0.0]
    while keys_t[-1] < t[-1]:
        keys_t.append(keys_t[-1] + rng.uniform(*period))
    keys_v = rng.uniform(low, high, size=len(keys_t))
    k = np.clip(np.searchsorted(keys_t, t, side="right") - 1, 0, len(keys_t) - 2)
    u = (t - np.asarray(keys_t)[k]) / (np.asarray(keys_t)[k + 1] - np.asarray(keys_t)[k])
    w = 0.5 - 0.5 * np.cos(np.pi * np.clip(u * 1.6, 0.0, 1.0))  # move, then hold
    return keys_v[k] * (1 - w) + keys_v[k + 1] * w


def _gait(rng: np.random.Generator, t: np.ndarray, euler: np.ndarray, speed_scale: float = 1.0) -> tuple[np.ndarray, float]:
    """Fill leg/arm/spine angles of a walking gait in ``euler`` (T, 24, 3); return phase and speed."""
    freq = rng.uniform(0.8, 1.0)  # gait cycles per second (two steps)
    stride = rng.uniform(0.55, 0.75) * speed_scale  # metres per step
    speed = 2 * stride * freq
    hip_amp = rng.uniform(0.30, 0.45) * speed_scale
    phase = 2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
    for side, sgn in (("left", 0.0), ("right", np.pi)):
        ph = phase + sgn
        hip = np.zeros((t.shape[0], 3))
        hip[:, 0] = -0.1 - hip_amp * np.sin(ph)
        knee = np.zeros_like(hip)
        knee[:, 0] = 0.1 + (0.45 + 0.4 * speed_scale) * np.clip(np.sin(ph + 0.6), 0, None) ** 2
        ankle = np.zeros_like(hip)
        ankle[:, 0] = 0.15 * np.sin(ph - 0.8)
        shoulder = np.zeros_like(hip)
        shoulder[:, 2] = -rng.uniform(1.2, 1.35)
        shoulder[:, 1] = 0.3 * speed_scale * np.sin(ph)  # opposite to the leg on the same side
        elbow = np.zeros_like(hip)
        elbow[:, 1] = -0.25 - 0.15 * np.clip(-np.sin(ph), 0, None)
        for name, e in (("hip", hip), ("knee", knee), ("ankle", ankle), ("shoulder", shoulder), ("elbow", elbow)):
            euler[:, _idx(f"{side}_{name}")] = e if side == "left" else _mirror_euler(e)
    euler[:, _idx("spine1"), 0] = 0.05
    euler[:, _idx("spine2"), 1] = 0.06 * np.sin(phase)  # counter-rotation of the trunk
    return phase, speed


def _heading_clip(t: np.ndarray, yaw: np.ndarray, speed: np.ndarray, pitch: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Root axis-angle and horizontal translation from heading yaw (rad about +y) and speed (m/s)."""
    dt = np.diff(t, prepend=t[0])
    fwd = np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], axis=1)  # yaw 0 faces +z
    transl = np.cumsum(fwd * (speed * dt)[:, None], axis=0)
    R = Rotation.from_euler("y", yaw[:, None])
    if pitch is not None:
        R = R * Rotation.from_euler("x", pitch[:, None])
    return R.as_rotvec(), transl


def generate_motion(kind: str, seed: int = 0, body: BodyModel | None = None,
                    config: ProceduralConfig = ProceduralConfig()) -> MotionClip:
    """One procedural clip.

    kind: one of :data:`PROCEDURAL_KINDS`
    seed: random seed for every variation (speed, amplitudes, targets, turn direction)
    body: body model used to put the feet on the floor (None = the shipped default body)
    config: duration and rate
    returns: ``MotionClip`` named ``synthetic/<kind>``, y-up world, every frame's lowest foot on y = 0
    """
    if kind not in PROCEDURAL_KINDS:
        raise ValueError(f"kind: {kind!r} is not one of {PROCEDURAL_KINDS}")
    if not config.duration_s > 0 or not config.fps > 0:
        raise ValueError(f"config: duration_s and fps must be > 0, got {config.duration_s}, {config.fps}")
    rng = np.random.default_rng([int(seed), PROCEDURAL_KINDS.index(kind)])
    T = int(round(config.duration_s * config.fps))
    t = np.arange(T) / config.fps
    euler = np.zeros((T, 24, 3))
    pitch = None
    yaw0 = rng.uniform(-np.pi, np.pi)

    if kind == "walk":
        _, speed = _gait(rng, t, euler)
        yaw = yaw0 + np.cumsum(np.full(T, rng.uniform(-0.15, 0.15)) / config.fps)  # gentle curve
        speed_t = np.full(T, speed)
    elif kind == "turn":
        # slow steps on a tight curve: the heading turns by 90-270 degrees and back
        _, speed = _gait(rng, t, euler, speed_scale=0.5)
        total = rng.uniform(np.pi / 2, 1.5 * np.pi) * rng.choice([-1.0, 1.0])
        yaw = yaw0 + total * np.sin(np.pi * t / t[-1].clip(min=1e-6)) ** 2
        speed_t = np.full(T, speed * 0.5)
        euler[:, _idx("neck"), 1] = np.clip(0.3 * np.gradient(yaw, t), -0.6, 0.6)  # look into the turn
    elif kind == "reach":
        yaw = np.full(T, yaw0)
        speed_t = np.zeros(T)
        for side in ("left", "right"):
            sh = np.stack([
                _smooth_keyframes(rng, t, (1.0, 2.0), -0.8, 0.8),
                _smooth_keyframes(rng, t, (1.0, 2.0), -1.5, 0.3),
                _smooth_keyframes(rng, t, (1.0, 2.0), -1.5, 1.2),
            ], axis=1)
            el = np.zeros((T, 3))
            el[:, 1] = _smooth_keyframes(rng, t, (1.0, 2.0), -2.0, -0.05)
            euler[:, _idx(f"{side}_shoulder")] = sh if side == "left" else _mirror_euler(sh)
            euler[:, _idx(f"{side}_elbow")] = el if side == "left" else _mirror_euler(el)
        euler[:, _idx("spine1"), 0] = _smooth_keyframes(rng, t, (1.5, 3.0), -0.1, 0.5)
        euler[:, _idx("spine2"), 1] = _smooth_keyframes(rng, t, (1.5, 3.0), -0.35, 0.35)
        euler[:, _idx("neck"), 0] = _smooth_keyframes(rng, t, (1.5, 3.0), -0.2, 0.4)
        euler[:, _idx("head"), 1] = _smooth_keyframes(rng, t, (1.5, 3.0), -0.4, 0.4)
        for side in ("left", "right"):  # soft knees
            euler[:, _idx(f"{side}_knee"), 0] = 0.1
            euler[:, _idx(f"{side}_hip"), 0] = -0.1
    else:  # crouch: repeated squats of random depth, feet flat, arms forward for balance
        yaw = np.full(T, yaw0)
        speed_t = np.zeros(T)
        d = _smooth_keyframes(rng, t, (1.2, 2.5), 0.0, 1.0)
        pitch = 0.4 * d  # pelvis tilts forward
        for side in ("left", "right"):
            hip = np.stack([-1.6 * d, np.zeros(T), 0.15 * d], axis=1)
            knee = np.stack([1.9 * d, np.zeros(T), np.zeros(T)], axis=1)
            ankle = np.stack([-0.7 * d, np.zeros(T), np.zeros(T)], axis=1)
            sh = np.stack([np.zeros(T), -1.2 * d, -1.3 * (1 - d)], axis=1)
            for name, e in (("hip", hip), ("knee", knee), ("ankle", ankle), ("shoulder", sh)):
                euler[:, _idx(f"{side}_{name}")] = e if side == "left" else _mirror_euler(e)
        euler[:, _idx("spine1"), 0] = 0.1 * d
        euler[:, _idx("neck"), 0] = -0.3 * d  # keep looking ahead

    euler[:, 1:] = np.clip(euler[:, 1:], JOINT_LIMITS[1:, :, 0], JOINT_LIMITS[1:, :, 1])
    body_pose = euler_to_axis_angle(euler[:, 1:])
    global_orient, transl = _heading_clip(t, yaw, speed_t, pitch)
    clip = MotionClip(
        name=f"synthetic/{kind}", fps=float(config.fps), global_orient=global_orient, body_pose=body_pose,
        transl=transl, betas=np.zeros(10), source="synthetic", synthetic=True,
        attribution=f"{SYNTHETIC_ATTRIBUTION}; kind={kind}, seed={int(seed)}",
    )
    if body is None:
        body = load_body_model()
    return place_on_floor(clip, body, per_frame=True)
