"""Reading a scenario bag (``hmr scenario make`` output, mcap or sqlite3) back into arrays.

:func:`read_scenario` reads everything except the images into a :class:`Scenario` (one
pass over the bag, with rosbags' ``AnyReader`` and a fresh ROS 2 Humble typestore: the custom
``hmr_msgs`` types are taken from the definitions stored in the bag, so no ``.msg`` files are
needed). Images are read lazily with :meth:`Scenario.images` / :meth:`Scenario.image`.

Frame index ``t`` is the index of a ``/camera/camera_info`` message; every topic of a frame
carries the same stamp. Ground truth is dense over the ground-truth person index ``p``
(``present[t, p]`` says whether the person exists in frame t; absent entries are NaN).
Rotations are matrices (``R @ x``), converted from the messages' (x, y, z, w) quaternions.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from hmr_node.core.body.skeleton import NUM_COCO17
from hmr_node.core.geometry.camera import PinholeCamera
from hmr_node.core.geometry.rotations import quat_xyzw_to_matrix
from hmr_node.tools.scenario import TOPICS


@dataclass(frozen=True)
class Detection:
    """One person in one /people/keypoints message.

    track_id: the simulated tracker's id (the ground-truth index unless ids switched).
    uv: (17, 2) COCO-17 pixel coordinates (meaningless where conf == 0).
    conf: (17,) confidences in [0, 1]; 0 = not detected.
    bbox: (4,) x_min, y_min, x_max, y_max, pixels.
    score: person score in [0, 1].
    """

    track_id: int
    uv: np.ndarray
    conf: np.ndarray
    bbox: np.ndarray
    score: float


@dataclass(frozen=True)
class KeypointTrack:
    """All detections of one track id.

    frames: (N,) frame indices.
    uv: (N, 17, 2) pixels.
    conf: (N, 17) confidences.
    """

    frames: np.ndarray
    uv: np.ndarray
    conf: np.ndarray


@dataclass(frozen=True)
class GroundTruthPeople:
    """Ground-truth SMPL parameters of every person over the recording, in one frame.

    frame_id: TF frame of every pose (camera optical frame or odom).
    present: (T, P) bool, person p exists in frame t.
    global_orient: (T, P, 3, 3) root orientation in ``frame_id``.
    body_pose: (T, P, 23, 3, 3) parent-relative joint rotations.
    transl: (T, P, 3) SMPL transl in ``frame_id``, metres.
    root: (T, P, 3) pelvis joint in ``frame_id``, metres.
    betas: (P, S) shape coefficients.
    body_model: name of the body model the parameters belong to.
    keypoints_uv: (T, P, 17, 2) exact COCO-17 projections, pixels (camera frame only, else NaN).
    keypoints_visible: (T, P, 17) bool, visible (in front, in image, not occluded).
    """

    frame_id: str
    present: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray
    root: np.ndarray
    betas: np.ndarray
    body_model: str
    keypoints_uv: np.ndarray
    keypoints_visible: np.ndarray


@dataclass(frozen=True)
class OdometryTrack:
    """/odom over the recording (odom frame, planar robot).

    pose: (T, 3) x, y (metres) and yaw (radians) of base_link in odom.
    position: (T, 3) metres.
    orientation: (T, 4) quaternions (x, y, z, w).
    linear: (T, 3) body-frame linear velocity, m/s.
    angular: (T, 3) body-frame angular velocity, rad/s.
    pose_covariance: (T, 6, 6); twist_covariance: (T, 6, 6).
    """

    pose: np.ndarray
    position: np.ndarray
    orientation: np.ndarray
    linear: np.ndarray
    angular: np.ndarray
    pose_covariance: np.ndarray
    twist_covariance: np.ndarray


@dataclass(frozen=True)
class Scenario:
    """A scenario bag as arrays (see the module docstring).

    path: the bag directory.
    info: the /scenario/info JSON document (seed, config, motions, attribution, ...).
    camera: intrinsics from /camera/camera_info.
    frame_ids: {'odom', 'base', 'camera'} TF frame names.
    stamps: (T,) int64 nanoseconds of every frame.
    times: (T,) seconds from the first frame.
    base_from_camera_R: (3, 3) static R_base_from_optical (/tf_static).
    base_from_camera_t: (3,) optical origin in base_link, metres.
    odometry: /odom per frame.
    camera_R: (T, 3, 3) ground-truth R_odom_from_optical (/ground_truth/camera_pose).
    camera_t: (T, 3) ground-truth camera position in odom, metres.
    detections: per frame, the list of :class:`Detection` of /people/keypoints.
    gt_camera: ground truth in the camera optical frame.
    gt_world: ground truth in the (drift-free) odom frame.
    has_images: the bag has /camera/image_raw.
    """

    path: Path
    info: dict
    camera: PinholeCamera
    frame_ids: dict
    stamps: np.ndarray
    times: np.ndarray
    base_from_camera_R: np.ndarray
    base_from_camera_t: np.ndarray
    odometry: OdometryTrack
    camera_R: np.ndarray
    camera_t: np.ndarray
    detections: list
    gt_camera: GroundTruthPeople
    gt_world: GroundTruthPeople
    has_images: bool

    @property
    def num_frames(self) -> int:
        return int(self.stamps.shape[0])

    @property
    def num_people(self) -> int:
        return int(self.gt_camera.present.shape[1])

    def keypoint_tracks(self) -> dict[int, KeypointTrack]:
        """Detections grouped by track id: {track_id: KeypointTrack}."""
        by_id: dict[int, list] = {}
        for t, dets in enumerate(self.detections):
            for d in dets:
                by_id.setdefault(d.track_id, []).append((t, d))
        return {tid: KeypointTrack(np.array([t for t, _ in v]), np.stack([d.uv for _, d in v]),
                                   np.stack([d.conf for _, d in v]))
                for tid, v in sorted(by_id.items())}

    def images(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(t, image)`` for every frame, image (H, W, 3) uint8 **RGB**, read lazily."""
        if not self.has_images:
            raise ValueError(f"path: {self.path} has no {TOPICS['image']} (made with --no-render)")
        index = {int(s): t for t, s in enumerate(self.stamps)}
        with AnyReader([self.path], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
            conns = [c for c in reader.connections if c.topic == TOPICS["image"]]
            for conn, ts, raw in reader.messages(connections=conns):
                msg = reader.deserialize(raw, conn.msgtype)
                yield index[_stamp(msg.header)], image_to_rgb(msg)

    def image(self, t: int) -> np.ndarray:
        """Image of frame t: (H, W, 3) uint8 RGB (scans the bag up to that frame)."""
        if not 0 <= t < self.num_frames:
            raise ValueError(f"t: frame index {t} out of range [0, {self.num_frames})")
        for k, img in self.images():
            if k == t:
                return img
        raise ValueError(f"t: frame {t} has no image in {self.path}")


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image (rgb8 or bgr8) -> (H, W, 3) uint8 RGB."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8).reshape(h, step)[:, : w * 3].reshape(h, w, 3)
    if msg.encoding == "rgb8":
        return data.copy()
    if msg.encoding == "bgr8":
        return data[..., ::-1].copy()
    raise ValueError(f"encoding: unsupported image encoding {msg.encoding!r} (rgb8 or bgr8)")


def _stamp(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _quats_to_R(q: np.ndarray) -> np.ndarray:
    return quat_xyzw_to_matrix(torch.as_tensor(np.asarray(q, np.float64))).numpy()


def _xyz(v) -> list[float]:
    return [v.x, v.y, v.z]


def _xyzw(q) -> list[float]:
    return [q.x, q.y, q.z, q.w]


def read_scenario(path: str | os.PathLike) -> Scenario:
    """Read a scenario bag (mcap or sqlite3 rosbag2 directory) into a :class:`Scenario`.

    path: the bag directory (as written by ``hmr scenario make``).
    Raises FileNotFoundError for a missing path and ValueError for a bag that is not a scenario.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: {path} does not exist")
    wanted = {v: k for k, v in TOPICS.items() if k != "image"}
    msgs: dict[str, list] = {k: [] for k in wanted.values()}
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        topics = {c.topic for c in reader.connections}
        missing = [t for t in ("/camera/camera_info", TOPICS["info"], TOPICS["gt_camera"])
                   if t not in topics]
        if missing:
            raise ValueError(f"path: {path} is not a scenario bag (missing topics {missing})")
        has_images = TOPICS["image"] in topics
        conns = [c for c in reader.connections if c.topic in wanted]
        for conn, _, raw in reader.messages(connections=conns):
            msgs[wanted[conn.topic]].append(reader.deserialize(raw, conn.msgtype))

    info = json.loads(msgs["info"][0].data)
    cinfo = msgs["camera_info"]
    stamps = np.array([_stamp(m.header) for m in cinfo], dtype=np.int64)
    index = {int(s): t for t, s in enumerate(stamps)}
    T = stamps.shape[0]
    camera = PinholeCamera.from_camera_info(cinfo[0])
    frame_ids = {"odom": info["frames"]["odom"], "base": info["frames"]["base"],
                 "camera": info["frames"]["camera"]}

    static = msgs["tf_static"][0].transforms[0].transform
    base_R = _quats_to_R(_xyzw(static.rotation))
    base_t = np.array(_xyz(static.translation))

    odo = sorted(msgs["odom"], key=lambda m: _stamp(m.header))
    position = np.array([_xyz(m.pose.pose.position) for m in odo]).reshape(-1, 3)
    orientation = np.array([_xyzw(m.pose.pose.orientation) for m in odo]).reshape(-1, 4)
    yaw = 2.0 * np.arctan2(orientation[:, 2], orientation[:, 3])
    yaw = np.arctan2(np.sin(yaw), np.cos(yaw))
    odometry = OdometryTrack(
        pose=np.column_stack([position[:, :2], yaw]) if len(odo) else np.zeros((0, 3)),
        position=position, orientation=orientation,
        linear=np.array([_xyz(m.twist.twist.linear) for m in odo]).reshape(-1, 3),
        angular=np.array([_xyz(m.twist.twist.angular) for m in odo]).reshape(-1, 3),
        pose_covariance=np.array([m.pose.covariance for m in odo]).reshape(-1, 6, 6),
        twist_covariance=np.array([m.twist.covariance for m in odo]).reshape(-1, 6, 6))

    cam_R = np.full((T, 3, 3), np.nan)
    cam_t = np.full((T, 3), np.nan)
    for m in msgs["camera_pose"]:
        t = index[_stamp(m.header)]
        cam_R[t] = _quats_to_R(_xyzw(m.pose.orientation))
        cam_t[t] = _xyz(m.pose.position)

    detections: list[list[Detection]] = [[] for _ in range(T)]
    for m in msgs["keypoints"]:
        t = index[_stamp(m.header)]
        for d in m.people:
            detections[t].append(Detection(
                track_id=int(d.track_id),
                uv=np.stack([np.asarray(d.x, np.float64), np.asarray(d.y, np.float64)], -1),
                conf=np.asarray(d.confidence, np.float64), bbox=np.asarray(d.bbox, np.float64),
                score=float(d.score)))

    P = len(info.get("people", []))
    gt_camera = _ground_truth(msgs["gt_camera"], index, T, P, frame_ids["camera"], True)
    gt_world = _ground_truth(msgs["gt_world"], index, T, P, frame_ids["odom"], False)
    return Scenario(path=path, info=info, camera=camera, frame_ids=frame_ids, stamps=stamps,
                    times=(stamps - stamps[0]) / 1e9 if T else np.zeros(0),
                    base_from_camera_R=base_R, base_from_camera_t=base_t, odometry=odometry,
                    camera_R=cam_R, camera_t=cam_t, detections=detections,
                    gt_camera=gt_camera, gt_world=gt_world, has_images=has_images)


def _ground_truth(messages, index: dict, T: int, P: int, frame_id: str,
                  with_keypoints: bool) -> GroundTruthPeople:
    for m in messages:  # P from the messages when /scenario/info lacks people
        for person in m.people:
            P = max(P, int(person.track_id) + 1)
    present = np.zeros((T, P), bool)
    orient = np.full((T, P, 3, 3), np.nan)
    pose = np.full((T, P, 23, 3, 3), np.nan)
    transl = np.full((T, P, 3), np.nan)
    root = np.full((T, P, 3), np.nan)
    uv = np.full((T, P, NUM_COCO17, 2), np.nan)
    vis = np.zeros((T, P, NUM_COCO17), bool)
    betas: dict[int, np.ndarray] = {}
    body_model = ""
    for m in messages:
        if m.header.frame_id != frame_id:
            raise ValueError(f"frame_id: ground truth expected in {frame_id!r}, got "
                             f"{m.header.frame_id!r}")
        t = index[_stamp(m.header)]
        for person in m.people:
            p = int(person.track_id)
            present[t, p] = True
            R = _quats_to_R(np.array([_xyzw(q) for q in person.rotations]))
            orient[t, p], pose[t, p] = R[0], R[1:]
            transl[t, p] = _xyz(person.transl)
            root[t, p] = _xyz(person.root_position)
            betas.setdefault(p, np.asarray(person.betas, np.float64))
            body_model = person.body_model
            kp = person.keypoints
            if with_keypoints and len(kp.x):
                uv[t, p] = np.stack([kp.x, kp.y], -1)
                vis[t, p] = np.asarray(kp.confidence) > 0
    S = max((b.shape[0] for b in betas.values()), default=0)
    B = np.full((P, S), np.nan)
    for p, b in betas.items():
        B[p, : b.shape[0]] = b
    return GroundTruthPeople(frame_id=frame_id, present=present, global_orient=orient,
                             body_pose=pose, transl=transl, root=root, betas=B,
                             body_model=body_model, keypoints_uv=uv, keypoints_visible=vis)
