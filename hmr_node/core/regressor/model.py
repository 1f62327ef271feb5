"""Keypoint regressor: COCO-17 2D keypoints + intrinsics -> SMPL pose (6D), betas, camera translation, features c.

Input normalisation (what makes the network independent of the camera)
---------------------------------------------------------------------
1. Pixels -> normalised camera coordinates ``x = K^-1 [u, v, 1]`` (``(u - cx) / fx``,
   ``(v - cy) / fy`` without skew): the same 3D scene gives the same numbers whatever K is.
2. A box around the confident keypoints (``conf >= min_conf``) in those coordinates; the
   keypoints are expressed in the box: ``(x - box_centre) / box_size`` (box_size = max side).
3. The network sees the box-normalised keypoints, their confidences (0 where missing) and the
   box itself (centre and log size): the box centre tells it the viewing direction, which the
   camera-frame global orientation depends on (as CLIFF feeds the crop location).

Output parameterisation
-----------------------
* ``pose6d``: 24 rotations, 6D = first two columns, re-orthonormalised; the head predicts a
  residual over a rest prior (body joints identity, global orientation upright facing the
  camera ``R_OPTICAL_FROM_SMPL``).
* ``transl``: depth in log space relative to the box, ``z = exp(d) / box_size`` (in
  normalised coordinates a body of metric extent ``exp(d)`` at depth z spans
  ``exp(d) / z``), and the image position of the SMPL origin as an offset in box units:
  ``transl = z * (box_centre + box_size * (ox, oy), 1)``.
* ``features``: the penultimate layer, the denoiser's conditioning vector c.

Any other regressor (e.g. an image-crop network) plugs in by returning
:class:`~hmr_node.core.regressor.output.RegressorOutput` with the same frames and units.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from hmr_node.core.body.skeleton import NUM_COCO17, NUM_SMPL_JOINTS
from hmr_node.core.geometry.frames import R_OPTICAL_FROM_SMPL
from hmr_node.core.geometry.rotations import matrix_to_rot6d, rot6d_to_matrix
from hmr_node.core.regressor.output import KeypointObservation, RegressorOutput

SHIPPED_REGRESSOR = str(Path(__file__).resolve().parents[2] / "models" / "regressor" / "regressor.pt")
CHECKPOINT_FORMAT = "hmr_node.regressor/1"
INPUT_DIM = NUM_COCO17 * 3 + 3  # box-normalised xy + conf per keypoint, box centre (2) + log size (1)


@dataclass(frozen=True)
class RegressorConfig:
    """Architecture and input normalisation of :class:`KeypointRegressor`.

    hidden_dim: width of the residual MLP trunk.
    num_blocks: residual blocks (pre-LayerNorm, Linear-GELU-Linear) in the trunk.
    feature_dim: size C of the feature vector c (penultimate layer) given to the denoiser.
    num_betas: SMPL shape coefficients predicted.
    min_conf: keypoints with confidence below this are treated as missing.
    min_box_size: lower bound of the keypoint box size, normalised camera units (a single
        keypoint or a degenerate box still gives finite inputs).
    log_body_extent: initial log of the metric extent (m) of a body's keypoint box, used for
        the depth prior ``z = exp(d) / box_size`` (d is predicted around this value).
    """

    hidden_dim: int = 512
    num_blocks: int = 3
    feature_dim: int = 128
    num_betas: int = 10
    min_conf: float = 0.1
    min_box_size: float = 0.01
    log_body_extent: float = math.log(1.5)

    def __post_init__(self) -> None:
        for name in ("hidden_dim", "num_blocks", "feature_dim", "num_betas"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RegressorConfig.{name}: expected a positive int, got {value!r}")
        if not 0.0 <= self.min_conf < 1.0:
            raise ValueError(f"RegressorConfig.min_conf: expected in [0, 1), got {self.min_conf!r}")
        if not self.min_box_size > 0:
            raise ValueError(f"RegressorConfig.min_box_size: expected > 0, got {self.min_box_size!r}")


def _check_keypoints(uv: torch.Tensor, conf: torch.Tensor, K: torch.Tensor) -> None:
    for name, x in (("uv", uv), ("conf", conf), ("K", K)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if uv.dim() != 3 or uv.shape[1:] != (NUM_COCO17, 2):
        raise ValueError(f"uv: expected (B, 17, 2) pixels, got {tuple(uv.shape)}")
    if conf.shape != uv.shape[:2]:
        raise ValueError(f"conf: expected (B, 17) = {tuple(uv.shape[:2])}, got {tuple(conf.shape)}")
    if K.shape != (uv.shape[0], 3, 3):
        raise ValueError(f"K: expected (B, 3, 3) with B = {uv.shape[0]}, got {tuple(K.shape)}")


def pixels_to_normalized(uv: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pixels -> normalised camera coordinates ``K^-1 [u, v, 1]`` (first two entries).

    uv: (B, N, 2) pixels
    K: (B, 3, 3) intrinsics (skew allowed)
    returns: (B, N, 2) ``(x / z, y / z)`` of the viewing rays
    """
    fx, s, cx = K[:, 0, 0, None], K[:, 0, 1, None], K[:, 0, 2, None]
    fy, cy = K[:, 1, 1, None], K[:, 1, 2, None]
    y = (uv[..., 1] - cy) / fy
    x = (uv[..., 0] - cx - s * y) / fx
    return torch.stack((x, y), dim=-1)


def keypoint_box(xy: torch.Tensor, mask: torch.Tensor, min_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Box around the masked points.

    xy: (B, N, 2) points
    mask: (B, N) bool, points to use
    min_size: lower bound of the size
    returns: centre (B, 2) (0 where no point is masked), size (B,) = max side, >= min_size
    """
    big = torch.finfo(xy.dtype).max
    lo = torch.where(mask[..., None], xy, xy.new_tensor(big)).amin(dim=1)
    hi = torch.where(mask[..., None], xy, xy.new_tensor(-big)).amax(dim=1)
    any_point = mask.any(dim=1, keepdim=True)
    lo = torch.where(any_point, lo, torch.zeros_like(lo))
    hi = torch.where(any_point, hi, torch.zeros_like(hi))
    centre = 0.5 * (lo + hi)
    size = (hi - lo).amax(dim=-1).clamp_min(min_size)
    return centre, size


def normalize_keypoints(uv: torch.Tensor, conf: torch.Tensor, K: torch.Tensor, config: RegressorConfig
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network input: intrinsics-free, box-normalised keypoints (see module docstring).

    uv: (B, 17, 2) pixels (any value where conf is below ``min_conf``; NaN allowed there)
    conf: (B, 17) confidences in [0, 1]
    K: (B, 3, 3) intrinsics
    config: regressor config (min_conf, min_box_size)
    returns: inputs (B, 54), box centre (B, 2) and box size (B,) in normalised camera units
    """
    mask = (conf >= config.min_conf) & torch.isfinite(uv).all(dim=-1) & (conf > 0)
    xy = pixels_to_normalized(torch.where(mask[..., None], uv, torch.zeros_like(uv)), K)
    xy = torch.where(mask[..., None], xy, torch.zeros_like(xy))
    centre, size = keypoint_box(xy, mask, config.min_box_size)
    kp = (xy - centre[:, None]) / size[:, None, None]
    kp = torch.where(mask[..., None], kp, torch.zeros_like(kp))
    c = torch.where(mask, conf.clamp(0.0, 1.0), torch.zeros_like(conf))
    inputs = torch.cat((kp.flatten(1), c, centre, size.log()[:, None]), dim=1)
    return inputs, centre, size


class _ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm(x))))


def _rest_pose6d() -> torch.Tensor:
    """(144,) 6D of the rest prior: upright facing the camera, body joints at identity."""
    R = torch.eye(3).repeat(NUM_SMPL_JOINTS, 1, 1)
    R[0] = torch.as_tensor(R_OPTICAL_FROM_SMPL, dtype=torch.float32)
    return matrix_to_rot6d(R).reshape(-1)


class KeypointRegressor(nn.Module):
    """COCO-17 keypoints + intrinsics -> :class:`RegressorOutput` (see module docstring)."""

    def __init__(self, config: RegressorConfig = RegressorConfig()):
        super().__init__()
        if not isinstance(config, RegressorConfig):
            raise TypeError(f"config: expected RegressorConfig, got {type(config).__name__}")
        self.config = config
        h = config.hidden_dim
        self.input = nn.Linear(INPUT_DIM, h)
        self.blocks = nn.ModuleList(_ResidualBlock(h) for _ in range(config.num_blocks))
        self.to_features = nn.Sequential(nn.LayerNorm(h), nn.Linear(h, config.feature_dim), nn.GELU())
        self.head_pose = nn.Linear(config.feature_dim, NUM_SMPL_JOINTS * 6)
        self.head_betas = nn.Linear(config.feature_dim, config.num_betas)
        self.head_cam = nn.Linear(config.feature_dim, 3)  # (ox, oy, d)
        for head in (self.head_pose, self.head_betas, self.head_cam):
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)
        self.register_buffer("rest_pose6d", _rest_pose6d(), persistent=False)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs: (B, 54) from :func:`normalize_keypoints` -> (B, feature_dim) features c."""
        x = self.input(inputs)
        for block in self.blocks:
            x = block(x)
        return self.to_features(x)

    def forward(self, uv: torch.Tensor, conf: torch.Tensor, K: torch.Tensor) -> RegressorOutput:
        """uv: (B, 17, 2) undistorted pixels; conf: (B, 17) in [0, 1]; K: (B, 3, 3) -> RegressorOutput.

        No input cleaning here (training path); use :func:`predict` for untrusted input.
        """
        _check_keypoints(uv, conf, K)
        inputs, centre, size = normalize_keypoints(uv, conf, K, self.config)
        c = self.features(inputs)
        pose6d = self.head_pose(c) + self.rest_pose6d
        pose6d = matrix_to_rot6d(rot6d_to_matrix(pose6d.reshape(-1, NUM_SMPL_JOINTS, 6))).flatten(1)
        cam = self.head_cam(c)
        z = torch.exp(cam[:, 2] + self.config.log_body_extent) / size
        xy = (centre + size[:, None] * cam[:, :2]) * z[:, None]
        transl = torch.cat((xy, z[:, None]), dim=1)
        return RegressorOutput(pose6d=pose6d, betas=self.head_betas(c), transl=transl, features=c)

    def predict(self, uv, conf, K) -> RegressorOutput:
        """Inference on untrusted detections (NaN -> confidence 0, never NaN out): :func:`predict`."""
        return predict(self, uv, conf, K)


# ---------------------------------------------------------------------- robust inference
def valid_intrinsics(K: torch.Tensor) -> torch.Tensor:
    """K: (B, 3, 3) -> (B,) bool: finite, fx > 0, fy > 0, last row (0, 0, 1)."""
    finite = torch.isfinite(K).flatten(1).all(dim=1)
    Kz = torch.where(torch.isfinite(K), K, torch.zeros_like(K))
    last = (Kz[:, 2] - Kz.new_tensor([0.0, 0.0, 1.0])).abs().amax(dim=1) < 1e-6
    return finite & (Kz[:, 0, 0] > 0) & (Kz[:, 1, 1] > 0) & (Kz[:, 1, 0].abs() < 1e-9) & last


def sanitize_keypoints(uv: torch.Tensor, conf: torch.Tensor, K: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Make untrusted detections safe for the network.

    Non-finite keypoints or confidences get confidence 0 (position 0); confidences are
    clipped to [0, 1]. A sample with invalid intrinsics (:func:`valid_intrinsics`) gets all
    confidences 0 and a nominal K (f = 1000 px, principal point at 0), so its output is the
    network's finite "no evidence" answer.

    uv: (B, 17, 2) pixels; conf: (B, 17); K: (B, 3, 3)
    returns: uv, conf, K cleaned, and k_ok (B,) bool (False where K was replaced)
    """
    _check_keypoints(uv, conf, K)
    finite = torch.isfinite(uv).all(dim=-1) & torch.isfinite(conf)
    k_ok = valid_intrinsics(K)
    keep = finite & k_ok[:, None]
    conf = torch.where(keep, conf.nan_to_num(0.0).clamp(0.0, 1.0), torch.zeros_like(conf))
    uv = torch.where(keep[..., None], uv, torch.zeros_like(uv))
    nominal = torch.tensor([[1000.0, 0.0, 0.0], [0.0, 1000.0, 0.0], [0.0, 0.0, 1.0]], dtype=K.dtype, device=K.device)
    K = torch.where(k_ok[:, None, None], K, nominal)
    return uv, conf, K, k_ok


@torch.no_grad()
def predict(model: KeypointRegressor, uv, conf, K) -> RegressorOutput:
    """Inference on untrusted detections: never NaN (see :func:`sanitize_keypoints`).

    model: a (trained) :class:`KeypointRegressor`
    uv: (B, 17, 2) or (17, 2) undistorted pixels (tensor or array; NaN allowed)
    conf: (B, 17) or (17,) confidences (NaN -> 0)
    K: (B, 3, 3) or (3, 3) intrinsics (broadcast over B)
    returns: RegressorOutput with batch B (float32, on the model's device)
    """
    p = next(model.parameters())
    uv = torch.as_tensor(uv, dtype=p.dtype, device=p.device)
    conf = torch.as_tensor(conf, dtype=p.dtype, device=p.device)
    K = torch.as_tensor(K, dtype=p.dtype, device=p.device)
    if uv.dim() == 2:
        uv, conf = uv[None], conf[None]
    if K.dim() == 2:
        K = K.expand(uv.shape[0], 3, 3)
    uv, conf, K, _ = sanitize_keypoints(uv, conf, K)
    was_training = model.training
    model.eval()
    try:
        return model(uv, conf, K)
    finally:
        model.train(was_training)


def predict_observation(model: KeypointRegressor, obs: KeypointObservation) -> RegressorOutput:
    """:func:`predict` on a :class:`KeypointObservation` (image_size is not needed by this regressor)."""
    return predict(model, obs.uv, obs.conf, obs.K)


# ---------------------------------------------------------------------- checkpoints
def save_regressor(path: str | os.PathLike, model: KeypointRegressor, metadata: dict | None = None,
                   half: bool = False) -> Path:
    """Write a checkpoint: ``{'format', 'config', 'state_dict', 'metadata'}`` (torch.save).

    path: output .pt file (parent directories are created)
    model: the regressor
    metadata: JSON-like dict (training data, steps, metrics, command)
    half: store the weights as float16 (half the file; :func:`load_regressor` casts back to float32)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(model.config),
        "state_dict": {k: v.detach().cpu().to(torch.float16 if half else v.dtype).clone()
                       for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_regressor(path: str | os.PathLike | None = None, device="cpu") -> KeypointRegressor:
    """Load a regressor checkpoint written by :func:`save_regressor` (None = the shipped weights).

    path: .pt file, or None for ``hmr_node/models/regressor/regressor.pt``
    device: where to put the model
    returns: the model in eval mode; its ``metadata`` attribute holds the checkpoint metadata
    """
    path = Path(SHIPPED_REGRESSOR if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no regressor checkpoint at {path}"
                                + (" (train one with `hmr train regressor`)" if str(path) == SHIPPED_REGRESSOR else ""))
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"path: {path} is not a {CHECKPOINT_FORMAT} checkpoint")
    known = {f.name for f in fields(RegressorConfig)}
    config = RegressorConfig(**{k: v for k, v in payload["config"].items() if k in known})
    model = KeypointRegressor(config)
    model.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    model.metadata = payload.get("metadata", {})
    return model.to(device).eval()


def num_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


__all__ = ["RegressorConfig", "KeypointRegressor", "normalize_keypoints", "pixels_to_normalized", "keypoint_box",
           "valid_intrinsics", "sanitize_keypoints", "predict", "predict_observation", "save_regressor",
           "load_regressor", "SHIPPED_REGRESSOR", "INPUT_DIM", "num_parameters"]
