"""A simulated upstream 2D keypoint detector: COCO-17 ground truth in pixels -> noisy detections.

The model (all numbers are the :class:`KeypointNoiseConfig` defaults; ``s`` = ``scale``)
-------------------------------------------------------------------------------------------
For each person independently (``h`` = pixel height of the bounding box of the person's
*visible* true keypoints, 0 if fewer than two are visible):

1. **Detectable joints.** A joint can only be reported if it is ``visible`` (not occluded, not
   behind the camera; decided by the caller), its true position is finite and it lies inside
   the image ``0 <= u < width, 0 <= v < height`` (truncation at the borders). All other joints
   get confidence 0.
2. **Jitter.** Isotropic Gaussian noise per joint and axis with standard deviation
   ``sigma_j = s * w_j * (jitter_px + jitter_rel * h)``, ``jitter_px = 1.5`` px,
   ``jitter_rel = 0.01`` (a 300 px tall person gets ``w_j * 4.5`` px). ``w_j``
   (``joint_weights``) are the COCO OKS per-keypoint sigmas normalised to mean 1 (face
   0.37-0.52, shoulders 1.18, elbows 1.08, wrists 0.93, hips 1.60, knees 1.30, ankles 1.33):
   joints that are hard to localise jitter more.
3. **Left/right swaps.** Each of the 8 left/right pairs is swapped (the detector labels the
   left joint as right and vice versa) with probability ``s * swap_prob = 0.01``; the
   swapped labels carry the other joint's position and detectability.
4. **Outliers.** Each joint is, with probability ``s * outlier_prob = 0.01``, displaced by an
   extra Gaussian offset with std ``outlier_px + outlier_rel * h`` = ``10 px + 0.2 h`` per axis
   (a wrong limb / background hit). The magnitude is not scaled by ``s``; its frequency is.
5. **Missed joints.** Each detectable joint is dropped (confidence 0) with probability
   ``s * miss_prob = 0.03``.
6. **Lost frames.** The whole person is not detected in this frame (all confidences 0) with
   probability ``s * lost_frame_prob = 0.02``.
7. **Confidence.** A reported joint with pixel error ``e`` (against the true position of the
   label it carries) gets ``conf = clip(exp(-e^2 / (2 c^2)) + s * conf_noise * n, conf_min,
   1)``, ``n ~ N(0, 1)``, with ``c = conf_err_px + conf_err_rel * h = 3 px + 0.03 h``,
   ``conf_noise = 0.05`` and ``conf_min = 0.05``: an OKS-like score, so confidence falls with
   the true error relative to the person's size, outliers and swaps get low confidence,
   and a reported joint never has confidence exactly 0.
8. **Output.** Reported positions are clipped to ``[0, width] x [0, height]``; joints with
   confidence 0 have position ``(0, 0)`` (COCO's convention for unlabelled keypoints), so
   consumers must ignore positions where ``conf == 0``.

``scale = 0`` turns every effect off: visible in-image joints come back exactly with
confidence 1, the rest with confidence 0. The random stream is consumed identically
whatever the inputs' values and the config, so a seeded generator gives reproducible noise.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from hmr_node.core.body.skeleton import COCO17_FLIP_PERMUTATION, NUM_COCO17

# COCO keypoint OKS sigmas (x10), in COCO-17 order, normalised below to mean 1.
_COCO_OKS_SIGMAS = (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
                    1.07, 1.07, 0.87, 0.87, 0.89, 0.89)
_DEFAULT_JOINT_WEIGHTS = tuple(
    round(x / (sum(_COCO_OKS_SIGMAS) / len(_COCO_OKS_SIGMAS)), 4) for x in _COCO_OKS_SIGMAS)
# The 8 (left, right) index pairs of COCO-17.
_LR_PAIRS = tuple((i, j) for i, j in enumerate(COCO17_FLIP_PERMUTATION) if i < j)


@dataclass(frozen=True)
class KeypointNoiseConfig:
    """Noise model of the simulated 2D detector (see the module docstring for the maths).

    jitter_px: base per-axis jitter std in pixels (before the joint weight).
    jitter_rel: extra per-axis jitter std per pixel of person bbox height.
    joint_weights: 17 per-joint multipliers of the jitter std (COCO OKS sigmas, mean 1).
    outlier_prob: per-joint probability of an outlier.
    outlier_px: base per-axis std of an outlier's offset in pixels.
    outlier_rel: extra per-axis outlier std per pixel of person bbox height.
    swap_prob: per-pair, per-frame probability of swapping a left/right pair.
    miss_prob: per-joint probability that a detectable joint is not reported (conf 0).
    lost_frame_prob: per-person, per-frame probability that the person is not detected.
    conf_err_px: base error scale of the confidence model in pixels.
    conf_err_rel: extra error scale of the confidence model per pixel of bbox height.
    conf_noise: std of the additive Gaussian noise on reported confidences.
    conf_min: lowest confidence of a reported joint.
    scale: multiplier on the whole model (jitter std, probabilities, confidence noise); 0 = off.
    """

    jitter_px: float = 1.5
    jitter_rel: float = 0.01
    joint_weights: tuple[float, ...] = _DEFAULT_JOINT_WEIGHTS
    outlier_prob: float = 0.01
    outlier_px: float = 10.0
    outlier_rel: float = 0.2
    swap_prob: float = 0.01
    miss_prob: float = 0.03
    lost_frame_prob: float = 0.02
    conf_err_px: float = 3.0
    conf_err_rel: float = 0.03
    conf_noise: float = 0.05
    conf_min: float = 0.05
    scale: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "joint_weights":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"KeypointNoiseConfig.{f.name} must be a number, got {value!r}")
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"KeypointNoiseConfig.{f.name} must be finite and >= 0, "
                                 f"got {value!r}")
        for name in ("outlier_prob", "swap_prob", "miss_prob", "lost_frame_prob", "conf_min"):
            if getattr(self, name) > 1:
                raise ValueError(f"KeypointNoiseConfig.{name} is a probability in [0, 1], "
                                 f"got {getattr(self, name)!r}")
        if self.conf_err_px <= 0:
            raise ValueError(f"KeypointNoiseConfig.conf_err_px must be > 0, "
                             f"got {self.conf_err_px!r}")
        w = np.asarray(self.joint_weights, dtype=float)
        if w.shape != (NUM_COCO17,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"KeypointNoiseConfig.joint_weights must be {NUM_COCO17} finite "
                             f"numbers >= 0, got {self.joint_weights!r}")


def person_heights(uv: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Pixel height of the bounding box of each person's visible, finite keypoints.

    uv: (N, 17, 2) pixel coordinates.
    visible: (N, 17) bool.
    Returns (N,) heights in pixels; 0 where fewer than two joints are usable.
    """
    ok = visible & np.all(np.isfinite(uv), axis=-1)
    v = np.where(ok, uv[..., 1], 0.0)
    top = np.where(ok, v, np.inf).min(axis=1, initial=np.inf)
    bottom = np.where(ok, v, -np.inf).max(axis=1, initial=-np.inf)
    return np.where(ok.sum(axis=1) >= 2, bottom - top, 0.0)


def jitter_sigma(heights: np.ndarray, config: KeypointNoiseConfig) -> np.ndarray:
    """Per-axis jitter std of each joint (step 2 of the model).

    heights: (N,) person bbox heights in pixels.
    config: the noise model.
    Returns (N, 17) std in pixels.
    """
    w = np.asarray(config.joint_weights, dtype=float)
    return config.scale * w[None, :] * (config.jitter_px + config.jitter_rel * heights[:, None])


def corrupt_keypoints(uv: np.ndarray, visible: np.ndarray, image_size: tuple[int, int],
                      rng: np.random.Generator, config: KeypointNoiseConfig
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Turn true COCO-17 pixel positions into simulated detector output.

    uv: (N, 17, 2) true pixel coordinates (u right, v down) of N people.
    visible: (N, 17) bool; False = occluded, behind the camera or otherwise undetectable.
    image_size: (width, height) in pixels.
    rng: numpy Generator; the output is a deterministic function of its state.
    config: the noise model (:class:`KeypointNoiseConfig`).
    Returns ``uv_noisy`` (N, 17, 2) float64 pixels and ``conf`` (N, 17) float64 in [0, 1];
    ``conf == 0`` marks unreported joints (their position is (0, 0)); a lost frame is a
    person whose confidences are all 0.
    """
    if not isinstance(config, KeypointNoiseConfig):
        raise TypeError(f"config must be a KeypointNoiseConfig, got {type(config).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    uv = np.asarray(uv, dtype=np.float64)
    if uv.ndim != 3 or uv.shape[1:] != (NUM_COCO17, 2):
        raise ValueError(f"uv must have shape (N, {NUM_COCO17}, 2), got {uv.shape}")
    visible = np.asarray(visible)
    if visible.shape != uv.shape[:2]:
        raise ValueError(f"visible must have shape {uv.shape[:2]}, got {visible.shape}")
    if visible.dtype != bool:
        raise TypeError(f"visible must be a bool array, got dtype {visible.dtype}")
    try:
        width, height = (float(x) for x in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (width, height), got {image_size!r}") from None
    if not (width > 0 and height > 0):
        raise ValueError(f"image_size must be positive, got {image_size!r}")

    n = uv.shape[0]
    s = config.scale
    # All random draws up front, with fixed shapes: the stream does not depend on the data.
    z_jitter = rng.standard_normal((n, NUM_COCO17, 2))
    u_swap = rng.random((n, len(_LR_PAIRS)))
    u_outlier = rng.random((n, NUM_COCO17))
    z_outlier = rng.standard_normal((n, NUM_COCO17, 2))
    u_miss = rng.random((n, NUM_COCO17))
    u_lost = rng.random(n)
    z_conf = rng.standard_normal((n, NUM_COCO17))

    finite = np.all(np.isfinite(uv), axis=-1)
    uv_true = np.where(finite[..., None], uv, 0.0)
    inside = ((uv_true[..., 0] >= 0) & (uv_true[..., 0] < width)
              & (uv_true[..., 1] >= 0) & (uv_true[..., 1] < height))
    detectable = visible & finite & inside                                    # step 1
    h = person_heights(uv, visible)

    noisy = uv_true + jitter_sigma(h, config)[..., None] * z_jitter           # step 2

    # Step 3: a swapped pair exchanges labels: position and detectability follow the label.
    perm = np.tile(np.arange(NUM_COCO17), (n, 1))
    for k, (i, j) in enumerate(_LR_PAIRS):
        swap = u_swap[:, k] < s * config.swap_prob
        perm[swap, i], perm[swap, j] = j, i
    rows = np.arange(n)[:, None]
    noisy = noisy[rows, perm]
    detectable = detectable[rows, perm]

    outlier = u_outlier < s * config.outlier_prob                             # step 4
    outlier_std = config.outlier_px + config.outlier_rel * h
    noisy = noisy + np.where(outlier[..., None], outlier_std[:, None, None] * z_outlier, 0.0)

    reported = detectable & ~(u_miss < s * config.miss_prob)                 # step 5
    reported &= ~(u_lost < s * config.lost_frame_prob)[:, None]             # step 6

    err = np.linalg.norm(noisy - uv_true, axis=-1)                           # step 7
    c = config.conf_err_px + config.conf_err_rel * h
    conf = np.exp(-0.5 * (err / c[:, None]) ** 2) + s * config.conf_noise * z_conf
    conf = np.where(reported, np.clip(conf, config.conf_min, 1.0), 0.0)

    noisy[..., 0] = np.clip(noisy[..., 0], 0.0, width)                      # step 8
    noisy[..., 1] = np.clip(noisy[..., 1], 0.0, height)
    noisy = np.where(reported[..., None], noisy, 0.0)
    return noisy, conf
