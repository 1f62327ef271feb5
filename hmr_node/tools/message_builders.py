"""Build rosbags message objects (std, geometry and hmr_msgs) from numpy arrays.

Shared by the scenario writer and the bag replay, so both produce identical message layouts.
Field names are those of the ROS 2 messages; rotations go out as quaternions (x, y, z, w).
"""
from __future__ import annotations

import numpy as np
import torch

from hmr_node.core.geometry.rotations import matrix_to_quat_xyzw
from hmr_node.tools.msg_types import hmr_typestore, msg_type_name


class MessageBuilder:
    """Message factory over a rosbags typestore (default: ROS 2 Humble + hmr_msgs)."""

    def __init__(self, typestore=None):
        self.ts = typestore if typestore is not None else hmr_typestore()
        self.T = self.ts.types

    def header_ns(self, stamp_ns: int, frame: str):
        """std_msgs/Header from a stamp in integer nanoseconds."""
        Time = self.T["builtin_interfaces/msg/Time"]
        return self.T["std_msgs/msg/Header"](stamp=Time(sec=int(stamp_ns) // 1_000_000_000,
                                                        nanosec=int(stamp_ns) % 1_000_000_000), frame_id=frame)

    def vec(self, v):
        return self.T["geometry_msgs/msg/Vector3"](x=float(v[0]), y=float(v[1]), z=float(v[2]))

    def point(self, v):
        return self.T["geometry_msgs/msg/Point"](x=float(v[0]), y=float(v[1]), z=float(v[2]))

    def quat(self, q):
        """q: (4,) (x, y, z, w)."""
        return self.T["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))

    @staticmethod
    def mat_quat(R: np.ndarray) -> np.ndarray:
        """R: (..., 3, 3) -> (..., 4) quaternions (x, y, z, w)."""
        return matrix_to_quat_xyzw(torch.as_tensor(np.asarray(R, np.float64))).numpy()

    def pose(self, t, q):
        return self.T["geometry_msgs/msg/Pose"](position=self.point(t), orientation=self.quat(q))

    def transform_ns(self, stamp_ns: int, parent: str, child: str, t, q):
        """geometry_msgs/TransformStamped of ``child`` in ``parent``: translation t (3,), rotation q (x, y, z, w)."""
        return self.T["geometry_msgs/msg/TransformStamped"](
            header=self.header_ns(stamp_ns, parent), child_frame_id=child,
            transform=self.T["geometry_msgs/msg/Transform"](translation=self.vec(t), rotation=self.quat(q)))

    def keypoints2d(self, track_id: int, uv: np.ndarray, conf: np.ndarray, score: float | None = None):
        """hmr_msgs/Keypoints2D: uv (K, 2) pixels, conf (K,); bbox over the confident keypoints."""
        K2 = self.T[msg_type_name("Keypoints2D")]
        uv, conf = np.asarray(uv), np.asarray(conf)
        ok = conf > 0
        if ok.any():
            bbox = np.array([uv[ok, 0].min(), uv[ok, 1].min(), uv[ok, 0].max(), uv[ok, 1].max()], np.float32)
        else:
            bbox = np.zeros(4, np.float32)
        if score is None:
            score = float(conf[ok].mean()) if ok.any() else 0.0
        return K2(track_id=int(track_id), score=float(score), bbox=bbox, x=uv[:, 0].astype(np.float32),
                  y=uv[:, 1].astype(np.float32), confidence=conf.astype(np.float32))

    def smpl_person(self, track_id: int, stage: int, rotations: np.ndarray, betas: np.ndarray, transl: np.ndarray,
                    root: np.ndarray, keypoints, body_model: str, revision: int = 0, confidence: float = 1.0,
                    fit_residual: float = float("nan")):
        """hmr_msgs/SmplPerson. rotations: (24, 3, 3) [0] global orientation, [1..23] body pose;
        betas (S,); transl, root (3,) metres in the array's frame; keypoints: a Keypoints2D message."""
        Person = self.T[msg_type_name("SmplPerson")]
        quats = self.mat_quat(rotations)
        return Person(track_id=int(track_id), stage=int(stage), revision=int(revision),
                      rotations=[self.quat(q) for q in quats], betas=np.asarray(betas, np.float32),
                      transl=self.vec(transl), root_position=self.point(root), confidence=float(confidence),
                      fit_residual=float(fit_residual), keypoints=keypoints, body_model=body_model)

    def smpl_person_array(self, stamp_ns: int, frame: str, people: list):
        return self.T[msg_type_name("SmplPersonArray")](header=self.header_ns(stamp_ns, frame), people=people)
