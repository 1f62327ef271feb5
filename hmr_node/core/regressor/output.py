"""Data passed between the keypoint regressor and its consumers (ScoreHMR, SMPLify, runtime).

This is the fixed interface of issue 4. Any future regressor (e.g. an image-crop network) plugs
in by consuming a :class:`KeypointObservation` (or its own input) and returning a
:class:`RegressorOutput` with the same fields, frames and units:

* the pose is 24 rotations in 6D (first two columns), joint 0 in the camera optical frame, so
  the body model evaluated with ``global_orient = R_0`` and ``transl`` lands in that frame;
* ``features`` is whatever the regressor's penultimate layer holds; the pose denoiser is
  trained on the features of *one* regressor (``DenoiserConfig.cond_dim`` = C), so a new
  regressor needs its own denoiser (``hmr train denoiser --regressor NEW.pt``);
* inference on untrusted input must never return NaN (the keypoint regressor's ``predict``
  zeroes the confidence of NaN keypoints and replaces invalid intrinsics).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["RegressorOutput", "KeypointObservation"]


@dataclass
class RegressorOutput:
    """One regression estimate per person.

    pose6d: (B, 144) 6D rotations (first two COLUMNS of R) of the 24 SMPL joints; [0] is the
        global orientation in the camera OPTICAL frame (x right, y down, z forward), [1..23]
        the parent-relative body pose.
    betas: (B, 10) SMPL shape coefficients.
    transl: (B, 3) SMPL ``transl`` in the camera optical frame, metres (the body model is
        evaluated with ``global_orient`` in the optical frame and this ``transl``).
    features: (B, C) conditioning vector c for the denoiser, C = ``RegressorConfig.feature_dim``.
    """

    pose6d: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    features: torch.Tensor


@dataclass
class KeypointObservation:
    """COCO-17 2D keypoints of B people with the camera that saw them.

    uv: (B, 17, 2) COCO-17 keypoints, undistorted pixels.
    conf: (B, 17) confidences in [0, 1], 0 = missing.
    K: (B, 3, 3) intrinsics of the (undistorted) camera.
    image_size: (B, 2) width, height in pixels.
    """

    uv: torch.Tensor
    conf: torch.Tensor
    K: torch.Tensor
    image_size: torch.Tensor
