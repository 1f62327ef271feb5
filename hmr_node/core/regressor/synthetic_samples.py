"""Training samples for the keypoint regressor: SMPL motion frames seen by random robot cameras.

One sample (all in torch, batched, from a seeded generator):

1. a frame of a training clip (:class:`PoseBank`): its body pose and its root *tilt* (the clip's
   root rotation with its heading removed), optionally mirrored left/right;
2. the body's root in SMPL's y-up world: ``R_world = R_y(yaw) R_tilt(pitch, roll) R_clip_tilt``,
   yaw uniform over 360 degrees, a moderate extra pitch/roll; ``transl`` at the clip's height
   above the floor (y = 0), horizontal distance ``d`` and azimuth ``phi`` from the camera;
3. betas ~ N(0, betas_std^2), clipped;
4. a robot camera at height ``h`` above the floor, pitched down by ``p`` (negative = up) and
   slightly rolled: ``R_optical_from_world = R_z(roll) R_x(p) diag(-1, -1, 1)`` (optical z is
   the world +z heading before the pitch), intrinsics fx in a range, fy = fx (1 + small),
   principal point near the image centre, one of a few image sizes;
5. ``BodyModel.keypoints`` in the optical frame, projected with K; a keypoint is visible when
   it is 0.1 m in front of the camera (the noise model adds truncation at the image border);
6. detector noise from :func:`hmr_node.core.scenario.keypoint_noise.corrupt_keypoints` with a
   random severity ``scale`` per chunk of samples; samples with fewer than ``min_visible``
   reported keypoints are drawn again (a person mostly outside the view or lost).

Ground truth: 6D pose with the global orientation in the optical frame, betas, SMPL transl
in the optical frame, and the 24 joints / 17 keypoints in the optical frame.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from hmr_node.core.body.model import BodyModel
from hmr_node.core.data.mirror import mirror_smpl_params
from hmr_node.core.data.motion import MotionClip
from hmr_node.core.geometry.frames import transform_smpl_root
from hmr_node.core.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d
from hmr_node.core.regressor.output import KeypointObservation
from hmr_node.core.scenario.keypoint_noise import KeypointNoiseConfig, corrupt_keypoints


@dataclass(frozen=True)
class SyntheticSampleConfig:
    """Distribution of the synthetic training samples (see the module docstring).

    image_sizes: (width, height) choices, pixels.
    focal_range: fx range, pixels.
    aspect_jitter: fy = fx * (1 + U(-a, a)).
    principal_jitter: principal point offset from the image centre, U(-j, j) * size.
    distance_range: horizontal camera-to-person distance, metres.
    azimuth_margin: azimuth drawn within +-margin * half the horizontal field of view (> 1 puts
        people partly out of the view).
    camera_height_range: camera height above the floor, metres.
    camera_pitch_range_deg: camera pitch, degrees, positive looks down.
    camera_roll_deg: camera roll drawn in +-this, degrees.
    yaw_range_deg: body heading drawn in +-this, degrees (180 = all around).
    body_tilt_deg: extra pitch and roll of the body root drawn in +-this, degrees.
    betas_std: standard deviation of the sampled betas.
    betas_clip: betas are clipped to +-this.
    noise_scale_range: detector noise severity (KeypointNoiseConfig.scale) range, uniform.
    noise: the detector noise model whose ``scale`` is replaced by the drawn severity.
    min_visible: samples with fewer reported keypoints are drawn again.
    chunk: samples sharing one image size and one noise severity.
    """

    image_sizes: tuple[tuple[int, int], ...] = ((640, 480), (848, 480), (1280, 720))
    focal_range: tuple[float, float] = (400.0, 1200.0)
    aspect_jitter: float = 0.02
    principal_jitter: float = 0.05
    distance_range: tuple[float, float] = (1.5, 8.0)
    azimuth_margin: float = 1.15
    camera_height_range: tuple[float, float] = (0.3, 1.9)
    camera_pitch_range_deg: tuple[float, float] = (-15.0, 30.0)
    camera_roll_deg: float = 5.0
    yaw_range_deg: float = 180.0
    body_tilt_deg: float = 12.0
    betas_std: float = 1.0
    betas_clip: float = 3.0
    noise_scale_range: tuple[float, float] = (0.0, 2.0)
    noise: KeypointNoiseConfig = KeypointNoiseConfig()
    min_visible: int = 6
    chunk: int = 32

    def __post_init__(self) -> None:
        for name in ("focal_range", "distance_range", "camera_height_range", "camera_pitch_range_deg",
                     "noise_scale_range"):
            lo, hi = getattr(self, name)
            if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
                raise ValueError(f"SyntheticSampleConfig.{name}: expected finite (lo, hi) with lo <= hi, got {(lo, hi)}")
        if self.focal_range[0] <= 0 or self.distance_range[0] <= 0:
            raise ValueError(f"SyntheticSampleConfig: focal_range and distance_range must be > 0, got "
                             f"{self.focal_range}, {self.distance_range}")
        if not self.image_sizes or any(w <= 0 or h <= 0 for w, h in self.image_sizes):
            raise ValueError(f"SyntheticSampleConfig.image_sizes: expected positive (w, h) pairs, got {self.image_sizes}")
        if not 0 <= self.min_visible <= 17:
            raise ValueError(f"SyntheticSampleConfig.min_visible: expected 0..17, got {self.min_visible}")
        if self.chunk < 1:
            raise ValueError(f"SyntheticSampleConfig.chunk: expected >= 1, got {self.chunk}")


# ---------------------------------------------------------------------- pose bank
def _rot_y(angle: torch.Tensor) -> torch.Tensor:
    return axis_angle_to_matrix(torch.stack((torch.zeros_like(angle), angle, torch.zeros_like(angle)), -1))


def _rot_x(angle: torch.Tensor) -> torch.Tensor:
    return axis_angle_to_matrix(torch.stack((angle, torch.zeros_like(angle), torch.zeros_like(angle)), -1))


def _rot_z(angle: torch.Tensor) -> torch.Tensor:
    return axis_angle_to_matrix(torch.stack((torch.zeros_like(angle), torch.zeros_like(angle), angle), -1))


def remove_heading(R: torch.Tensor) -> torch.Tensor:
    """Root rotations in SMPL's y-up world without their heading (yaw about y).

    R: (N, 3, 3) root rotations; the body faces ``R @ (0, 0, 1)``
    returns: (N, 3, 3) ``R_y(-yaw) R`` whose forward direction has no x component
    """
    forward = R[:, :, 2]
    yaw = torch.atan2(forward[:, 0], forward[:, 2])
    return _rot_y(-yaw) @ R


@dataclass(frozen=True)
class PoseBank:
    """Frames of motion clips ready for sampling.

    names: clip names the frames came from
    root_tilt: (N, 3, 3) clip root rotation with the heading removed (y-up world)
    body_pose: (N, 23, 3, 3) parent-relative rotations
    body_pose_aa: (N, 23, 3) the same as axis-angle (for priors)
    height: (N,) SMPL transl y (height above the floor), metres
    clip_index: (N,) index into names
    """

    names: tuple[str, ...]
    root_tilt: torch.Tensor
    body_pose: torch.Tensor
    body_pose_aa: torch.Tensor
    height: torch.Tensor
    clip_index: torch.Tensor

    @property
    def num_frames(self) -> int:
        return int(self.body_pose.shape[0])

    @classmethod
    def from_clips(cls, clips: Sequence[MotionClip], frame_step: int = 1, mirror: bool = False) -> "PoseBank":
        """Build from MotionClips (SMPL y-up world).

        clips: the clips (already at the rate wanted)
        frame_step: keep every frame_step-th frame
        mirror: also add the left/right mirror image of every frame (:mod:`hmr_node.core.data.mirror`)
        """
        if not clips:
            raise ValueError("clips: expected at least one MotionClip, got none")
        if frame_step < 1:
            raise ValueError(f"frame_step: expected >= 1, got {frame_step}")
        go, bp, h, idx = [], [], [], []
        for i, clip in enumerate(clips):
            if not isinstance(clip, MotionClip):
                raise TypeError(f"clips[{i}]: expected MotionClip, got {type(clip).__name__}")
            sl = slice(None, None, frame_step)
            go.append(torch.as_tensor(np.asarray(clip.global_orient)[sl], dtype=torch.float32))
            bp.append(torch.as_tensor(np.asarray(clip.body_pose)[sl], dtype=torch.float32))
            h.append(torch.as_tensor(np.asarray(clip.transl)[sl, 1], dtype=torch.float32))
            idx.append(torch.full((go[-1].shape[0],), i, dtype=torch.long))
        go, bp, h, idx = torch.cat(go), torch.cat(bp), torch.cat(h), torch.cat(idx)
        if mirror:
            m_go, m_bp, _ = mirror_smpl_params(go.numpy(), bp.numpy(), np.zeros((go.shape[0], 3)))
            mgo, mbp = torch.as_tensor(m_go, dtype=torch.float32), torch.as_tensor(m_bp, dtype=torch.float32)
            go, bp, h, idx = torch.cat((go, mgo)), torch.cat((bp, mbp)), h.repeat(2), idx.repeat(2)
        ok = torch.isfinite(go).all(1) & torch.isfinite(bp).flatten(1).all(1) & torch.isfinite(h)
        go, bp, h, idx = go[ok], bp[ok], h[ok], idx[ok]
        return cls(names=tuple(c.name for c in clips), root_tilt=remove_heading(axis_angle_to_matrix(go)),
                   body_pose=axis_angle_to_matrix(bp), body_pose_aa=bp, height=h, clip_index=idx)


def is_validation_clip(name: str, fraction: float = 0.12) -> bool:
    """Deterministic hold-out by clip name (within the training split): sha1(name) < fraction.

    Only the part before '#' is hashed, so variants ``<name>#<tag>`` of one clip stay together.
    """
    digest = hashlib.sha1(name.split("#")[0].encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < fraction


def split_train_validation(clips: Sequence[MotionClip], fraction: float = 0.12
                           ) -> tuple[list[MotionClip], list[MotionClip]]:
    """Split training clips by name into (fit, validation); both are from the 'train' split."""
    fit = [c for c in clips if not is_validation_clip(c.name, fraction)]
    val = [c for c in clips if is_validation_clip(c.name, fraction)]
    return fit, val


# ---------------------------------------------------------------------- samples
@dataclass
class SyntheticBatch:
    """A batch of B synthetic people.

    uv: (B, 17, 2) detections, pixels (0 where conf == 0)
    conf: (B, 17) confidences in [0, 1]
    K: (B, 3, 3) intrinsics
    image_size: (B, 2) width, height
    uv_clean: (B, 17, 2) exact projections of keypoints3d
    visible: (B, 17) bool, in front of the camera and inside the image
    noise_scale: (B,) detector noise severity
    rotmats: (B, 24, 3, 3) GT rotations, [0] global orientation in the optical frame
    pose6d: (B, 144) the same as 6D
    betas: (B, 10)
    transl: (B, 3) SMPL transl in the optical frame, metres
    joints3d: (B, 24, 3) optical frame, metres
    keypoints3d: (B, 17, 3) optical frame, metres
    body_pose_aa: (B, 23, 3) GT body pose, axis-angle
    """

    uv: torch.Tensor
    conf: torch.Tensor
    K: torch.Tensor
    image_size: torch.Tensor
    uv_clean: torch.Tensor
    visible: torch.Tensor
    noise_scale: torch.Tensor
    rotmats: torch.Tensor
    pose6d: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    joints3d: torch.Tensor
    keypoints3d: torch.Tensor
    body_pose_aa: torch.Tensor

    def __len__(self) -> int:
        return int(self.uv.shape[0])

    def observation(self) -> KeypointObservation:
        return KeypointObservation(uv=self.uv, conf=self.conf, K=self.K, image_size=self.image_size)

    @staticmethod
    def cat(batches: Sequence["SyntheticBatch"]) -> "SyntheticBatch":
        names = SyntheticBatch.__dataclass_fields__.keys()
        return SyntheticBatch(**{n: torch.cat([getattr(b, n) for b in batches]) for n in names})

    def select(self, index) -> "SyntheticBatch":
        names = SyntheticBatch.__dataclass_fields__.keys()
        return SyntheticBatch(**{n: getattr(self, n)[index] for n in names})


def project_with_K(points: torch.Tensor, K: torch.Tensor, min_depth: float = 1e-3) -> torch.Tensor:
    """points: (B, N, 3) optical frame; K: (B, 3, 3) -> (B, N, 2) pixels (depth clamped at min_depth)."""
    z = points[..., 2].clamp_min(min_depth)
    x, y = points[..., 0] / z, points[..., 1] / z
    u = K[:, None, 0, 0] * x + K[:, None, 0, 1] * y + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * y + K[:, None, 1, 2]
    return torch.stack((u, v), dim=-1)


class SyntheticSampler:
    """Draws :class:`SyntheticBatch` es on the fly from a pose bank and a body model.

    body: the body model (float32, CPU)
    bank: frames to draw poses from
    config: the sample distribution
    seed: seeds both the torch generator (geometry) and the numpy generator (detector noise)
    """

    def __init__(self, body: BodyModel, bank: PoseBank, config: SyntheticSampleConfig = SyntheticSampleConfig(),
                 seed: int = 0):
        if not isinstance(bank, PoseBank):
            raise TypeError(f"bank: expected PoseBank, got {type(bank).__name__}")
        if not isinstance(config, SyntheticSampleConfig):
            raise TypeError(f"config: expected SyntheticSampleConfig, got {type(config).__name__}")
        self.body, self.bank, self.config = body, bank, config
        self.gen = torch.Generator().manual_seed(int(seed))
        self.rng = np.random.default_rng(int(seed))
        self.acceptance = 0.6  # running estimate of the fraction of drawn people kept

    # -- random helpers
    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.gen)

    def _candidates(self, n: int) -> SyntheticBatch:
        cfg, bank = self.config, self.bank
        idx = torch.randint(bank.num_frames, (n,), generator=self.gen)
        body_R = bank.body_pose[idx]
        body_aa = bank.body_pose_aa[idx]
        tilt = bank.root_tilt[idx]
        deg = math.pi / 180.0
        R_world = (_rot_y(self._u(n, -1, 1) * cfg.yaw_range_deg * deg) @ _rot_x(self._u(n, -1, 1) * cfg.body_tilt_deg * deg)
                   @ _rot_z(self._u(n, -1, 1) * cfg.body_tilt_deg * deg) @ tilt)
        betas = (torch.randn(n, self.body.num_betas, generator=self.gen) * cfg.betas_std).clamp(-cfg.betas_clip,
                                                                                                cfg.betas_clip)
        # camera: one image size per chunk
        n_chunks = -(-n // cfg.chunk)
        size_idx = torch.randint(len(cfg.image_sizes), (n_chunks,), generator=self.gen).repeat_interleave(cfg.chunk)[:n]
        sizes = torch.tensor(cfg.image_sizes, dtype=torch.float32)[size_idx]
        fx = self._u(n, *cfg.focal_range)
        fy = fx * (1 + self._u(n, -cfg.aspect_jitter, cfg.aspect_jitter))
        cx = sizes[:, 0] * (0.5 + self._u(n, -cfg.principal_jitter, cfg.principal_jitter))
        cy = sizes[:, 1] * (0.5 + self._u(n, -cfg.principal_jitter, cfg.principal_jitter))
        K = torch.zeros(n, 3, 3)
        K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = fx, fy, cx, cy, 1.0
        cam_h = self._u(n, *cfg.camera_height_range)
        pitch = self._u(n, *cfg.camera_pitch_range_deg) * deg
        roll = self._u(n, -cfg.camera_roll_deg, cfg.camera_roll_deg) * deg
        R_cw = _rot_z(roll) @ _rot_x(pitch) @ torch.diag(torch.tensor([-1.0, -1.0, 1.0]))
        # person: horizontal distance and azimuth relative to the camera heading (+z)
        half_fov = torch.atan(0.5 * sizes[:, 0] / fx)
        phi = self._u(n, -1, 1) * cfg.azimuth_margin * half_fov
        d = self._u(n, *cfg.distance_range)
        t_world = torch.stack((d * torch.sin(phi), bank.height[idx], d * torch.cos(phi)), dim=1)
        cam_pos = torch.stack((torch.zeros(n), cam_h, torch.zeros(n)), dim=1)
        pelvis_rest = self.body.rest_joints(betas)[:, 0]
        go_cam, transl_cam = transform_smpl_root(R_cw, -(R_cw @ cam_pos[..., None])[..., 0], R_world, t_world,
                                                 pelvis_rest)
        with torch.no_grad():
            kp3d = self.body.keypoints(betas, go_cam, body_R, transl_cam)
            j3d = self.body.joints(betas, go_cam, body_R, transl_cam)
        uv_clean = project_with_K(kp3d, K)
        in_front = kp3d[..., 2] > 0.1
        inside = ((uv_clean[..., 0] >= 0) & (uv_clean[..., 0] < sizes[:, None, 0])
                  & (uv_clean[..., 1] >= 0) & (uv_clean[..., 1] < sizes[:, None, 1]))
        # detector noise, one severity per chunk
        uv_noisy = torch.zeros_like(uv_clean)
        conf = torch.zeros(n, 17)
        scale = torch.zeros(n)
        uv_np, vis_np = uv_clean.double().numpy(), in_front.numpy()
        for c in range(n_chunks):
            sl = slice(c * cfg.chunk, min(n, (c + 1) * cfg.chunk))
            s = float(self.rng.uniform(*cfg.noise_scale_range))
            w, h = (int(x) for x in cfg.image_sizes[int(size_idx[sl.start])])
            noisy, cf = corrupt_keypoints(uv_np[sl], vis_np[sl], (w, h), self.rng, replace(cfg.noise, scale=s))
            uv_noisy[sl] = torch.as_tensor(noisy, dtype=torch.float32)
            conf[sl] = torch.as_tensor(cf, dtype=torch.float32)
            scale[sl] = s
        rotmats = torch.cat((go_cam[:, None], body_R), dim=1)
        return SyntheticBatch(uv=uv_noisy, conf=conf, K=K, image_size=sizes, uv_clean=uv_clean,
                              visible=in_front & inside, noise_scale=scale, rotmats=rotmats,
                              pose6d=matrix_to_rot6d(rotmats).flatten(1), betas=betas, transl=transl_cam,
                              joints3d=j3d, keypoints3d=kp3d, body_pose_aa=body_aa)

    def sample(self, batch: int) -> SyntheticBatch:
        """Draw ``batch`` people with at least ``min_visible`` reported keypoints each."""
        if batch < 1:
            raise ValueError(f"batch: expected >= 1, got {batch}")
        kept, have, drawn, accepted = [], 0, 0, 0
        for _ in range(100):
            n = int(min(8 * batch, max(16, math.ceil(1.15 * (batch - have) / max(self.acceptance, 0.05)))))
            cand = self._candidates(n)
            ok = (cand.conf > 0).sum(dim=1) >= self.config.min_visible
            drawn, accepted = drawn + n, accepted + int(ok.sum())
            if ok.any():
                kept.append(cand.select(ok))
                have += int(ok.sum())
            if have >= batch:
                break
        else:
            raise RuntimeError(f"SyntheticSampler: fewer than {batch} usable people after {drawn} draws; "
                               "the camera/distance distribution leaves people out of view")
        self.acceptance = 0.8 * self.acceptance + 0.2 * accepted / drawn
        return SyntheticBatch.cat(kept).select(slice(0, batch))


__all__ = ["SyntheticSampleConfig", "PoseBank", "SyntheticBatch", "SyntheticSampler", "remove_heading",
           "is_validation_clip", "split_train_validation", "project_with_K"]
