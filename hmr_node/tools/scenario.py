"""``hmr scenario make``: write a synthetic rosbag2 recording of a robot seeing people.

The simulation lives in :mod:`hmr_node.core.scenario` (see its modules for the noise models);
this module loads the inputs, serialises the simulated arrays as ROS 2 messages with
``rosbags`` and writes the bag atomically (into a temporary directory next to the target,
renamed at the end; on any failure nothing is left behind).

Topics (every message of frame k carries the same stamp ``start_time + k / fps``):

=============================== ================================ ==============================
topic                           type                             frame / content
=============================== ================================ ==============================
/odom                           nav_msgs/Odometry                odom -> base_link, drifting
/tf                             tf2_msgs/TFMessage               odom -> base_link (odometry)
/tf_static                      tf2_msgs/TFMessage               base_link -> camera optical
                                                                 (once, transient-local QoS)
/camera/camera_info             sensor_msgs/CameraInfo           camera optical frame
/camera/image_raw               sensor_msgs/Image (rgb8)         unless ``render`` is False
/people/keypoints               hmr_msgs/PeopleKeypoints2D       simulated detector, COCO-17
/ground_truth/people_camera     hmr_msgs/SmplPersonArray         GT SMPL, camera optical frame
/ground_truth/people_world      hmr_msgs/SmplPersonArray         GT SMPL, odom (drift-free)
/ground_truth/camera_pose       geometry_msgs/PoseStamped        GT camera optical pose in odom
/scenario/info                  std_msgs/String                  JSON: seed, config, motions,
                                                                 body model, attribution
=============================== ================================ ==============================

Ground-truth topics carry ground truth, not estimates: ``stage = STAGE_FAST`` (0),
``confidence = 1``, ``fit_residual = NaN``, ``track_id`` = ground-truth person index, and every
person present in the scene is listed (also when out of view). In ``people_camera`` each
person's ``keypoints`` are the *exact* projections of the COCO-17 keypoints with
``confidence`` 1 where the joint is visible (in front, inside the image, not occluded) and 0
elsewhere (x, y are still the exact projection, NaN behind the camera). The ground-truth
world is the odom frame without drift: odometry starts at the true pose and drifts from it.
``/people/keypoints`` lists only the people the simulated detector reports in that frame.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path

import numpy as np
import torch
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer
from tqdm import tqdm

from hmr_node.core.body.model import BodyModel, load_body_model
from hmr_node.core.data.motion import MotionClip
from hmr_node.core.scenario.config import SPLITS, STORAGES, ScenarioConfig
from hmr_node.core.scenario.simulate import ScenarioImages, SimulatedScenario, simulate_scenario
from hmr_node.tools.message_builders import MessageBuilder
from hmr_node.tools.msg_types import hmr_typestore, msg_type_name

INFO_FORMAT = "hmr_node.scenario/1"
TOPICS = {
    "odom": "/odom",
    "tf": "/tf",
    "tf_static": "/tf_static",
    "camera_info": "/camera/camera_info",
    "image": "/camera/image_raw",
    "keypoints": "/people/keypoints",
    "gt_camera": "/ground_truth/people_camera",
    "gt_world": "/ground_truth/people_world",
    "camera_pose": "/ground_truth/camera_pose",
    "info": "/scenario/info",
}
STORAGE_PLUGINS = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


@dataclass(frozen=True)
class ScenarioSummary:
    """What :func:`make_scenario` wrote.

    path: the bag directory.
    storage: 'mcap' or 'sqlite3'.
    frames: camera frames written.
    people: people in the scene.
    motions: motion name of each person.
    duration: seconds of recording.
    bag_bytes: size of the bag directory, bytes.
    message_counts: messages per topic.
    wall_seconds: time taken to simulate and write.
    frames_per_second: frames written per wall-clock second.
    detected_fraction: fraction of (person, frame) pairs with an active person that the
        simulated detector reported.
    warnings: notes about the recording (placement rules that could not be met).
    """

    path: Path
    storage: str
    frames: int
    people: int
    motions: tuple[str, ...]
    duration: float
    bag_bytes: int
    message_counts: dict
    wall_seconds: float
    frames_per_second: float
    detected_fraction: float
    warnings: tuple[str, ...]


# ---------------------------------------------------------------------- inputs
def _registry():
    try:
        from hmr_node.core.data import registry
    except ModuleNotFoundError as exc:  # the registry is optional for callers that pass loaders
        raise RuntimeError("the motion registry hmr_node.core.data.registry is not available; "
                           "pass load_motion/list_motions explicitly") from exc
    return registry


def resolve_motions(config: ScenarioConfig,
                    load_motion: Callable[..., MotionClip] | None = None,
                    list_motions: Callable[[str], list[str]] | None = None,
                    warnings: list[str] | None = None) -> list[MotionClip]:
    """One motion clip per person, at ``config.fps``.

    config: the scenario; ``config.motion`` names the clips (person p plays motion[p % len]);
        when empty, ``config.people`` names are drawn (without replacement when possible) from
        ``list_motions(config.split)`` with a stream of ``config.seed``.
    load_motion: ``(name, fps, seed=...) -> MotionClip``; the seed (``config.seed * 1000 + p``)
        varies synthetic motions per person. Default: the motion registry's ``load_motion``
        for the body ``config.body_model``.
    list_motions: ``(split) -> names``; default: the motion registry's ``list_motions``.
    warnings: if given, a note is appended for each named motion outside ``config.split``
        (allowed, but e.g. eval clips in a training scenario leak the held-out data).
    Raises ValueError naming an unknown motion.
    """
    if load_motion is None or list_motions is None:
        reg = _registry()
        if load_motion is None:
            def load_motion(name, fps, seed=0):
                return reg.load_motion(name, fps, seed=seed, body_path=config.body_model)
        list_motions = list_motions or reg.list_motions
    if config.people == 0:
        return []
    if config.motion:
        names = [config.motion[p % len(config.motion)] for p in range(config.people)]
        if warnings is not None:
            in_split = set(list_motions(config.split))
            warnings += [f"motion {n!r} is not in split {config.split!r}"
                         for n in dict.fromkeys(names) if n not in in_split]
    else:
        available = sorted(list_motions(config.split))
        if not available:
            raise ValueError(f"split: no motions available in split {config.split!r}")
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0x6D6F74]))
        replace = len(available) < config.people
        names = [available[i] for i in rng.choice(len(available), config.people, replace=replace)]
    clips = []
    for p, name in enumerate(names):
        try:
            clip = load_motion(name, float(config.fps), seed=config.seed * 1000 + p)
        except (KeyError, ValueError, LookupError) as exc:
            raise ValueError(f"motion: cannot use {name!r}: {exc}") from None
        if not isinstance(clip, MotionClip):
            raise TypeError(f"motion: loader returned {type(clip).__name__} for {name!r}, "
                            "expected a MotionClip")
        clips.append(clip)
    return clips


# ---------------------------------------------------------------------- messages
class _Messages(MessageBuilder):
    """Builds rosbags message objects from the simulated arrays (one instance per bag)."""

    def __init__(self, sim: SimulatedScenario, body_name: str):
        super().__init__(hmr_typestore())
        self.sim, self.cfg, self.body_name = sim, sim.config, body_name
        t0 = int(round(sim.config.start_time * 1e9))
        self.stamps = [t0 + int(round(k * 1e9 / sim.config.fps)) for k in range(sim.config.frames)]

    def header(self, k: int, frame: str):
        return self.header_ns(self.stamps[k], frame)

    @staticmethod
    def yaw_quat(yaw: float) -> np.ndarray:
        return np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])

    def transform(self, k, parent, child, t, q):
        return self.transform_ns(self.stamps[k], parent, child, t, q)

    # -- topics
    def tf_static(self):
        sim = self.sim
        return self.T["tf2_msgs/msg/TFMessage"](transforms=[self.transform(
            0, self.cfg.base_frame, self.cfg.camera_frame, sim.base_from_optical_t,
            self.mat_quat(sim.base_from_optical_R))])

    def odom(self, k):
        o = self.sim.odometry
        x, y, yaw = o.pose[k]
        T = self.T
        return T["nav_msgs/msg/Odometry"](
            header=self.header(k, self.cfg.odom_frame), child_frame_id=self.cfg.base_frame,
            pose=T["geometry_msgs/msg/PoseWithCovariance"](
                pose=self.pose((x, y, 0.0), self.yaw_quat(yaw)),
                covariance=self.sim.odom_pose_cov[k].astype(np.float64)),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](
                twist=T["geometry_msgs/msg/Twist"](linear=self.vec((o.speed[k], 0.0, 0.0)),
                                                   angular=self.vec((0.0, 0.0, o.yaw_rate[k]))),
                covariance=self.sim.odom_twist_cov[k].astype(np.float64)))

    def tf(self, k):
        x, y, yaw = self.sim.odometry.pose[k]
        return self.T["tf2_msgs/msg/TFMessage"](transforms=[self.transform(
            k, self.cfg.odom_frame, self.cfg.base_frame, (x, y, 0.0), self.yaw_quat(yaw))])

    def camera_info(self, k):
        cam = self.sim.camera
        K = cam.K
        P = np.zeros((3, 4))
        P[:, :3] = K
        return self.T["sensor_msgs/msg/CameraInfo"](
            header=self.header(k, self.cfg.camera_frame), height=cam.height, width=cam.width,
            distortion_model=cam.distortion_model, d=np.asarray(cam.D, np.float64),
            k=K.reshape(-1).astype(np.float64), r=np.eye(3).reshape(-1),
            p=P.reshape(-1), binning_x=0, binning_y=0,
            roi=self.T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0,
                                                           width=0, do_rectify=False))

    def image(self, k, rgb: np.ndarray):
        h, w = rgb.shape[:2]
        return self.T["sensor_msgs/msg/Image"](
            header=self.header(k, self.cfg.camera_frame), height=h, width=w, encoding="rgb8",
            is_bigendian=0, step=w * 3, data=np.ascontiguousarray(rgb).reshape(-1))

    def people_keypoints(self, k):
        people = [self.keypoints2d(p.track_id[k], p.uv[k], p.conf[k])
                  for p in self.sim.people if p.conf[k].any()]
        return self.T[msg_type_name("PeopleKeypoints2D")](
            header=self.header(k, self.cfg.camera_frame), keypoint_format="coco17",
            people=people)

    def smpl_people(self, k, world: bool):
        Person = self.T[msg_type_name("SmplPerson")]
        people = []
        for p in self.sim.people:
            if not p.active[k]:
                continue
            orient = p.world_orient[k] if world else p.camera_orient[k]
            transl = p.world_transl[k] if world else p.camera_transl[k]
            root = p.world_root[k] if world else p.camera_root[k]
            if world:
                kp = self.keypoints2d(p.index, np.zeros((0, 2)), np.zeros(0), score=0.0)
            else:
                kp = self.keypoints2d(p.index, p.uv_true[k], p.visible[k].astype(np.float32),
                                      score=1.0)
            people.append(self.smpl_person(
                p.index, Person.STAGE_FAST, np.concatenate([orient[None], p.body_pose[k]]), p.betas,
                transl, root, kp, self.body_name))
        frame = self.cfg.odom_frame if world else self.cfg.camera_frame
        return self.smpl_person_array(self.stamps[k], frame, people)

    def camera_pose(self, k):
        return self.T["geometry_msgs/msg/PoseStamped"](
            header=self.header(k, self.cfg.odom_frame),
            pose=self.pose(self.sim.camera_t[k], self.mat_quat(self.sim.camera_R[k])))

    def info(self, body: BodyModel, body_path: str):
        return self.T["std_msgs/msg/String"](data=json.dumps(scenario_info(self.sim, body,
                                                                          body_path),
                                                             sort_keys=True))


def _jsonable(x):
    if is_dataclass(x):
        return {f.name: _jsonable(getattr(x, f.name)) for f in fields(x)}
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def scenario_info(sim: SimulatedScenario, body: BodyModel, body_path: str) -> dict:
    """The JSON document of /scenario/info (also returned for logging)."""
    people = [{"index": p.index, "motion": p.motion, "source": p.source,
               "synthetic": p.synthetic, "attribution": p.attribution,
               "clip_offset": p.placement.clip_offset, "clip_frames": p.clip_frames,
               "loop": list(p.loop) if p.loop else None,
               "active_frames": int(p.active.sum()),
               "detected_frames": int(p.detected.sum())} for p in sim.people]
    attributions = sorted({p.attribution for p in sim.people if p.attribution})
    return {
        "format": INFO_FORMAT,
        "seed": sim.config.seed,
        "config": _jsonable(sim.config),
        "people": people,
        "motions": [p.motion for p in sim.people],
        "body_model": {"name": body.name, "file": os.path.basename(body_path)},
        "attribution": attributions,
        "synthetic": {
            "scene": True,
            "note": "synthetic recording: simulated robot, odometry, camera, renderer and 2D "
                    "detector; people's motions are labelled per person",
            "motions": [p.synthetic for p in sim.people],
        },
        "frames": {"odom": sim.config.odom_frame, "base": sim.config.base_frame,
                   "camera": sim.config.camera_frame},
        "topics": dict(TOPICS) if sim.config.render
        else {k: v for k, v in TOPICS.items() if k != "image"},
        "ground_truth": "ground_truth/* topics carry ground truth (stage STAGE_FAST=0, "
                        "confidence 1); world = odom frame without drift",
        "warnings": list(sim.warnings),
    }


def _qos(durability: QosDurability) -> Qos:
    zero = QosTime(sec=0, nsec=0)
    return Qos(history=QosHistory.KEEP_LAST, depth=1 if durability is
               QosDurability.TRANSIENT_LOCAL else 10, reliability=QosReliability.RELIABLE,
               durability=durability, deadline=zero, lifespan=zero,
               liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=zero,
               avoid_ros_namespace_conventions=False)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---------------------------------------------------------------------- entry point
def make_scenario(config: ScenarioConfig, out: str | os.PathLike, *,
                  body: BodyModel | None = None,
                  load_motion: Callable[..., MotionClip] | None = None,
                  list_motions: Callable[[str], list[str]] | None = None,
                  progress: bool = True) -> ScenarioSummary:
    """Simulate a scenario and write it as a rosbag2 directory at ``out``.

    config: the scenario (storage, seed, noise multipliers, ...).
    out: bag directory to create; must not exist (its parent must).
    body: body model to use instead of loading ``config.body_model`` (tests).
    load_motion, list_motions: motion sources (default: the motion registry), see
        :func:`resolve_motions`.
    progress: show a tqdm progress bar on stderr.
    Raises FileExistsError / FileNotFoundError / ValueError naming the problem, before anything
    is written; a failure while writing removes the partial output.
    """
    if not isinstance(config, ScenarioConfig):
        raise TypeError(f"config must be a ScenarioConfig, got {type(config).__name__}")
    start = time.perf_counter()
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise FileExistsError(f"out: {out} already exists; refusing to overwrite it")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"out: parent directory {out.parent} does not exist")
    notes: list[str] = []
    clips = resolve_motions(config, load_motion, list_motions, notes)
    body_path = "<given>"
    if body is None:
        body = load_body_model(config.body_model, dtype=torch.float64)
        body_path = str(body.source_path)
    elif body.source_path:
        body_path = str(body.source_path)
    sim = simulate_scenario(config, body, clips)
    sim = replace(sim, warnings=tuple(notes) + sim.warnings)
    images = ScenarioImages(sim, body) if config.render else None
    msgs = _Messages(sim, body.name)
    ts = msgs.ts

    tmp_parent = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        bag = tmp_parent / out.name
        counts: dict[str, int] = {}
        with Writer(bag, version=9, storage_plugin=STORAGE_PLUGINS[config.storage]) as writer:
            def connect(key, msgtype, qos=QosDurability.VOLATILE):
                return writer.add_connection(TOPICS[key], msgtype, typestore=ts,
                                             offered_qos_profiles=[_qos(qos)])

            conns = {
                "info": connect("info", "std_msgs/msg/String", QosDurability.TRANSIENT_LOCAL),
                "tf_static": connect("tf_static", "tf2_msgs/msg/TFMessage",
                                     QosDurability.TRANSIENT_LOCAL),
                "odom": connect("odom", "nav_msgs/msg/Odometry"),
                "tf": connect("tf", "tf2_msgs/msg/TFMessage"),
                "camera_info": connect("camera_info", "sensor_msgs/msg/CameraInfo"),
                "keypoints": connect("keypoints", msg_type_name("PeopleKeypoints2D")),
                "gt_camera": connect("gt_camera", msg_type_name("SmplPersonArray")),
                "gt_world": connect("gt_world", msg_type_name("SmplPersonArray")),
                "camera_pose": connect("camera_pose", "geometry_msgs/msg/PoseStamped"),
            }
            if images is not None:
                conns["image"] = connect("image", "sensor_msgs/msg/Image")

            def write(key, k, msg):
                writer.write(conns[key], msgs.stamps[k],
                             ts.serialize_cdr(msg, conns[key].msgtype))
                counts[TOPICS[key]] = counts.get(TOPICS[key], 0) + 1

            write("info", 0, msgs.info(body, body_path))
            write("tf_static", 0, msgs.tf_static())
            bar = tqdm(range(config.frames), desc=f"scenario {out.name}", unit="frame",
                       disable=not progress, file=sys.stderr)
            for k in bar:
                write("odom", k, msgs.odom(k))
                write("tf", k, msgs.tf(k))
                write("camera_info", k, msgs.camera_info(k))
                if images is not None:
                    write("image", k, msgs.image(k, images.frame(k)))
                write("keypoints", k, msgs.people_keypoints(k))
                write("gt_camera", k, msgs.smpl_people(k, world=False))
                write("gt_world", k, msgs.smpl_people(k, world=True))
                write("camera_pose", k, msgs.camera_pose(k))
        os.rename(bag, out)
    except BaseException:
        shutil.rmtree(tmp_parent, ignore_errors=True)
        raise
    shutil.rmtree(tmp_parent, ignore_errors=True)
    wall = time.perf_counter() - start
    active = sum(int(p.active.sum()) for p in sim.people)
    detected = sum(int((p.detected & p.active).sum()) for p in sim.people)
    return ScenarioSummary(
        path=out, storage=config.storage, frames=config.frames, people=config.people,
        motions=tuple(p.motion for p in sim.people), duration=config.duration,
        bag_bytes=_dir_bytes(out), message_counts=counts, wall_seconds=wall,
        frames_per_second=config.frames / wall if wall > 0 else float("inf"),
        detected_fraction=detected / active if active else 0.0, warnings=sim.warnings)


# ---------------------------------------------------------------------- CLI
def _config_from_args(args: argparse.Namespace) -> ScenarioConfig:
    return ScenarioConfig(seed=args.seed, people=args.people, frames=args.frames, fps=args.fps,
                          storage=args.storage, motion=tuple(args.motion or ()),
                          split=args.split, render=args.render, odom_drift=args.odom_drift,
                          kp_noise=args.kp_noise, occlusion=args.occlusion,
                          body_model=args.body_model)


def _run_make(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)  # one core: the machines running this are shared
    summary = make_scenario(_config_from_args(args), args.out, progress=not args.quiet)
    print(f"wrote {summary.path} ({summary.storage}, {summary.frames} frames, "
          f"{summary.people} people, {summary.bag_bytes / 1e6:.1f} MB, "
          f"{summary.frames_per_second:.1f} frames/s)")
    for w in summary.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``scenario make`` to the ``hmr`` command line."""
    d = ScenarioConfig()
    parser = subparsers.add_parser("scenario", help="synthetic robot scenarios as rosbag2")
    sub = parser.add_subparsers(dest="scenario_command", metavar="SUBCOMMAND")
    make = sub.add_parser("make", help="write a synthetic rosbag2 recording of a robot seeing "
                                       "people (odometry, TF, camera, 2D keypoints, ground truth)")
    make.add_argument("--out", required=True, help="bag directory to create (must not exist)")
    make.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    make.add_argument("--people", type=int, default=d.people,
                      help=f"number of people (default {d.people})")
    make.add_argument("--frames", type=int, default=d.frames,
                      help=f"camera frames (default {d.frames})")
    make.add_argument("--fps", type=float, default=d.fps, help=f"frame rate, Hz (default {d.fps})")
    make.add_argument("--storage", choices=STORAGES, default=d.storage,
                      help=f"rosbag2 storage (default {d.storage})")
    make.add_argument("--motion", nargs="+", metavar="NAME", default=None,
                      help="motion names, person p plays NAME[p %% len] (default: drawn from "
                           "--split)")
    make.add_argument("--split", choices=SPLITS, default=d.split,
                      help=f"split to draw motions from (default {d.split})")
    make.add_argument("--render", action=argparse.BooleanOptionalAction, default=d.render,
                      help="write rendered camera images (default: yes)")
    make.add_argument("--odom-drift", type=float, default=d.odom_drift,
                      help="multiplier on the odometry drift/noise model (0 = off)")
    make.add_argument("--kp-noise", type=float, default=d.kp_noise,
                      help="multiplier on the 2D keypoint noise model (0 = exact keypoints)")
    make.add_argument("--occlusion", type=float, default=d.occlusion,
                      help="multiplier on occlusion between people (0 = off)")
    make.add_argument("--body-model", default=d.body_model, metavar="PATH",
                      help="SMPL-format body model file/directory (default: shipped body)")
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(func=_run_make)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    return parser
