"""The camera-rate perception pipeline, shared by the ROS node and the offline bag replay.

Per frame: 2D keypoints of the people in view (COCO-17, pixels, with track ids when the
detector has them) -> undistortion -> track ids for untracked detections -> batched
regression (the **fast** estimate of every person, this frame) -> each track's online
ScoreHMR sliding window (the **refined** estimates, emitted a bounded number of frames later,
:mod:`hmr_node.core.scorehmr.online`). Everything is in the camera optical frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from hmr_node.core.body.model import BodyModel, load_body_model
from hmr_node.core.geometry.camera import PinholeCamera
from hmr_node.core.geometry.rotations import rot6d_to_matrix
from hmr_node.core.regressor.model import load_regressor, predict
from hmr_node.core.regressor.output import KeypointObservation, RegressorOutput
from hmr_node.core.scorehmr.denoiser import load_denoiser
from hmr_node.core.scorehmr.online import EmittedFrame, OnlineWindowRefiner
from hmr_node.core.scorehmr.refiner import ScoreHmrConfig, ScoreHmrRefiner
from hmr_node.core.tracking import IouTracker, TrackerConfig

STAGE_FAST, STAGE_REFINED = 0, 1  # hmr_msgs/SmplPerson stage values


@dataclass(frozen=True)
class PipelineConfig:
    """regressor / denoiser / body_model: checkpoint or model files (None = shipped);
    refine: run ScoreHMR sliding-window refinement; min_keypoints: fewer confident keypoints
    and a detection is ignored; min_confidence: keypoint confidence that counts as detected;
    track_timeout_s: a track unseen for longer is flushed and closed."""

    regressor: str | None = None
    denoiser: str | None = None
    body_model: str | None = None
    refine: bool = True
    min_keypoints: int = 6
    min_confidence: float = 0.1
    track_timeout_s: float = 0.5
    scorehmr: ScoreHmrConfig = field(default_factory=ScoreHmrConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    def __post_init__(self) -> None:
        if self.min_keypoints < 1:
            raise ValueError(f"min_keypoints: expected >= 1, got {self.min_keypoints}")
        if not self.track_timeout_s > 0:
            raise ValueError(f"track_timeout_s: expected > 0, got {self.track_timeout_s}")


@dataclass
class PersonDetection:
    """One person's 2D keypoints: track_id (-1 = untracked), uv (17, 2) raw pixels, conf (17,)."""

    track_id: int
    uv: np.ndarray
    conf: np.ndarray


@dataclass
class PersonEstimate:
    """One person's SMPL estimate in the camera optical frame.

    track_id, stamp (seconds), stage (STAGE_FAST / STAGE_REFINED)
    rotations: (24, 3, 3) [0] global orientation, [1..23] parent-relative body pose
    betas: (10,); transl: (3,) SMPL transl, metres; root: (3,) pelvis position, metres
    uv, conf: (17, 2) undistorted pixels and (17,) confidences the estimate was fitted to
    fit_residual: RMS reprojection error of the confident keypoints, pixels
    refined: False when the refiner returned the regression unchanged (reason says why)
    delay_frames: frames between the frame's arrival and this estimate's emission
    """

    track_id: int
    stamp: float
    stage: int
    rotations: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    root: np.ndarray
    uv: np.ndarray
    conf: np.ndarray
    fit_residual: float
    refined: bool = False
    reason: str = ""
    delay_frames: int = 0

    @property
    def confidence(self) -> float:
        """Mean keypoint confidence, in [0, 1]."""
        return float(np.mean(self.conf))


@dataclass
class FrameResult:
    """fast: this frame's estimates; refined: estimates of earlier frames emitted now."""

    fast: list[PersonEstimate]
    refined: list[PersonEstimate]


class PeoplePipeline:
    """Keypoints in, fast and refined SMPL estimates out (see the module docstring)."""

    def __init__(self, config: PipelineConfig = PipelineConfig(), body: BodyModel | None = None):
        self.config = config
        self.body = body if body is not None else load_body_model(config.body_model)
        self.regressor = load_regressor(config.regressor)
        self.refiner = (ScoreHmrRefiner(load_denoiser(config.denoiser), self.body, config.scorehmr)
                        if config.refine else None)
        self.tracker = IouTracker(config.tracker)
        self._tracks: dict[int, OnlineWindowRefiner] = {}
        self._last_seen: dict[int, float] = {}
        self._observed: dict[int, dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}

    # ------------------------------------------------------------------ public
    def process(self, stamp: float, camera: PinholeCamera, detections: list[PersonDetection]) -> FrameResult:
        """One camera frame: stamp in seconds, the camera's intrinsics, the detections."""
        if not isinstance(camera, PinholeCamera):
            raise TypeError(f"camera: expected PinholeCamera, got {type(camera).__name__}")
        dets = [d for d in detections if self._usable(d)]
        refined = self._close_stale(stamp)
        if not dets:
            return FrameResult([], refined)
        uv = np.stack([camera.undistort_points(np.nan_to_num(d.uv)) for d in dets])
        conf = np.stack([np.where(np.isfinite(d.uv).all(-1), d.conf, 0.0) for d in dets])
        ids = np.array([d.track_id for d in dets], dtype=np.int64)
        untracked = ids < 0
        if untracked.any():
            ids[untracked] = self.tracker.assign(self._boxes(uv[untracked], conf[untracked]), stamp)
        K = np.repeat(np.asarray(camera.K)[None], len(dets), axis=0)
        reg = predict(self.regressor, uv, conf, K)
        fast = self._estimates(reg, uv, conf, K, ids, stamp, STAGE_FAST)
        if self.refiner is not None:
            obs = KeypointObservation(torch.as_tensor(uv, dtype=torch.float32), torch.as_tensor(conf, dtype=torch.float32),
                                      torch.as_tensor(K, dtype=torch.float32),
                                      torch.tensor([[camera.width, camera.height]], dtype=torch.float32).expand(len(dets), 2))
            for i, tid in enumerate(ids.tolist()):
                online = self._tracks.get(tid)
                if online is None:
                    online = self._tracks[tid] = OnlineWindowRefiner(self.refiner)
                self._observed.setdefault(tid, {})[stamp] = (uv[i], conf[i], np.asarray(camera.K))
                r_i = RegressorOutput(reg.pose6d[i:i + 1], reg.betas[i:i + 1], reg.transl[i:i + 1], reg.features[i:i + 1])
                o_i = KeypointObservation(obs.uv[i:i + 1], obs.conf[i:i + 1], obs.K[i:i + 1], obs.image_size[i:i + 1])
                refined += self._emitted(tid, online.push(r_i, o_i, stamp))
        for tid in ids.tolist():
            self._last_seen[tid] = stamp
        return FrameResult(fast, refined)

    def flush(self) -> list[PersonEstimate]:
        """Emit every pending refined estimate and close all tracks (end of stream)."""
        out = []
        for tid in list(self._tracks):
            out += self._close(tid)
        return out

    # ------------------------------------------------------------------ internals
    def _usable(self, d: PersonDetection) -> bool:
        conf = np.asarray(d.conf, dtype=float)
        ok = (conf >= self.config.min_confidence) & np.isfinite(np.asarray(d.uv, float)).all(-1)
        return int(ok.sum()) >= self.config.min_keypoints

    def _boxes(self, uv, conf) -> np.ndarray:
        out = []
        for u, c in zip(uv, conf):
            m = c >= self.config.min_confidence
            out.append([u[m, 0].min(), u[m, 1].min(), u[m, 0].max(), u[m, 1].max()])
        return np.asarray(out)

    def _close_stale(self, stamp: float) -> list[PersonEstimate]:
        out = []
        for tid in [t for t, s in self._last_seen.items() if stamp - s > self.config.track_timeout_s]:
            out += self._close(tid)
        return out

    def _close(self, tid: int) -> list[PersonEstimate]:
        online = self._tracks.pop(tid, None)
        out = self._emitted(tid, online.flush()) if online is not None else []
        self._last_seen.pop(tid, None)
        self._observed.pop(tid, None)
        return out

    def _emitted(self, tid: int, frames: list[EmittedFrame]) -> list[PersonEstimate]:
        if not frames:
            return []
        seen = self._observed[tid]
        uv = np.stack([seen[f.stamp][0] for f in frames])
        conf = np.stack([seen[f.stamp][1] for f in frames])
        K = np.stack([seen[f.stamp][2] for f in frames])
        reg = RegressorOutput(torch.stack([f.pose6d for f in frames]), torch.stack([f.betas for f in frames]),
                              torch.stack([f.transl for f in frames]), torch.zeros(len(frames), 1))
        est = self._estimates(reg, uv, conf, K, np.full(len(frames), tid), None, STAGE_REFINED,
                              stamps=[f.stamp for f in frames])
        for e, f in zip(est, frames):
            e.refined, e.reason, e.delay_frames = bool(f.refined), f.reason, int(f.delay_frames)
            seen.pop(f.stamp, None)
        return est

    def _estimates(self, reg: RegressorOutput, uv, conf, K, ids, stamp, stage, stamps=None) -> list[PersonEstimate]:
        dtype = self.body.J_template.dtype
        R = rot6d_to_matrix(reg.pose6d.reshape(-1, 24, 6).to(dtype))
        betas, transl = reg.betas.to(dtype), reg.transl.to(dtype)
        with torch.no_grad():
            kp = self.body.keypoints(betas, R[:, 0], R[:, 1:], transl).numpy()
            root = (self.body.rest_joints(betas)[:, 0] + transl).numpy()
        z = np.maximum(kp[..., 2:], 1e-6)
        proj = np.einsum("bij,bkj->bki", np.asarray(K)[:, :2, :2], kp[..., :2] / z) + np.asarray(K)[:, None, :2, 2]
        ok = conf >= self.config.min_confidence
        err2 = np.where(ok, ((proj - uv) ** 2).sum(-1), 0.0)
        residual = np.sqrt(err2.sum(1) / np.maximum(ok.sum(1), 1))
        Rn, bn, tn = R.numpy(), betas.numpy(), transl.numpy()
        return [PersonEstimate(int(ids[i]), float(stamp if stamps is None else stamps[i]), stage, Rn[i], bn[i], tn[i],
                               root[i], uv[i], conf[i], float(residual[i]), refined=False)
                for i in range(len(ids))]
