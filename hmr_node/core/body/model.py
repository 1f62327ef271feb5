"""The SMPL-format body model used everywhere in hmr_node.

``BodyModel`` evaluates any SMPL-format file (the shipped default or a user's real SMPL) with
its own tensor code (:mod:`hmr_node.core.body.kinematics`); smplx serves as the independent
reference in the tests. Three entry points, from slowest to fastest:

* :meth:`BodyModel.forward` - full mesh (shape + pose blend shapes, skinning) and 24 joints;
* :meth:`BodyModel.keypoints` - COCO-17 3D keypoints: only the vertices the keypoint regressor
  uses are skinned, so it is exact and cheap;
* :meth:`BodyModel.joints` - 24 joints only: rest joints are linear in betas
  (``J(b) = J_template + J_shapedirs . b``), then forward kinematics; no skinning.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from hmr_node.core.body import kinematics as kin
from hmr_node.core.body.model_file import DEFAULT_BODY_MODEL, read_body_model_arrays
from hmr_node.core.body.skeleton import NUM_SMPL_JOINTS


@dataclass(frozen=True)
class BodyModelConfig:
    """path: SMPL-format file or directory (None = the shipped default); num_betas: shape
    coefficients used (at most what the file has); dtype: 'float32' or 'float64'."""

    path: str | None = None
    num_betas: int = 10
    dtype: str = "float32"


class BodyOutput(NamedTuple):
    """vertices: (B, V, 3) metres; joints: (B, 24, 3) metres, SMPL joint order."""

    vertices: torch.Tensor
    joints: torch.Tensor


class BodyModel(nn.Module):
    """An SMPL-format body (24 joints, linear blend skinning) as a torch module.

    Inputs everywhere (B = batch):
        betas: (B, S) shape coefficients, S <= num_betas (missing ones are zero)
        global_orient: (B, 3) axis-angle or (B, 3, 3) rotation of the root
        body_pose: (B, 69) / (B, 23, 3) axis-angle or (B, 23, 3, 3) parent-relative rotations
        transl: (B, 3) translation added to every point, metres (None = zero)
    """

    def __init__(self, arrays: dict, num_betas: int = 10, dtype: torch.dtype = torch.float32):
        super().__init__()
        avail = arrays["shapedirs"].shape[-1]
        if num_betas < 1:
            raise ValueError(f"num_betas: must be >= 1, got {num_betas}")
        self.num_betas = min(int(num_betas), avail)
        self.parents: tuple[int, ...] = tuple(int(p) for p in arrays["parents"])
        self.levels = kin.kinematic_levels(self.parents)
        self.name = arrays.get("name", os.path.basename(arrays.get("source_path", "body")))
        self.source_path = arrays.get("source_path")
        self.smplx_vertex_ids = arrays.get("smplx_vertex_ids")

        def buf(name, value):
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(value), dtype=dtype), persistent=False)

        v_template = arrays["v_template"]
        shapedirs = arrays["shapedirs"][..., : self.num_betas]
        J_reg = arrays["J_regressor"]
        buf("v_template", v_template)
        buf("shapedirs", shapedirs)
        buf("posedirs", arrays["posedirs"].reshape(-1, arrays["posedirs"].shape[-1]).T)  # (207, V*3)
        buf("weights", arrays["weights"])
        buf("J_regressor", J_reg)
        # rest joints are linear in betas: precompute their template and shape directions
        buf("J_template", J_reg @ v_template)
        buf("J_shapedirs", np.einsum("jv,vcs->jcs", J_reg, shapedirs))
        self.register_buffer("faces", torch.as_tensor(arrays["f"], dtype=torch.long), persistent=False)
        # COCO-17 keypoints touch few vertices: keep only that support for the fast path
        kreg = arrays["coco17_regressor"]
        support = np.flatnonzero(np.abs(kreg).sum(0) > 0)
        self.register_buffer("kp_support", torch.as_tensor(support, dtype=torch.long), persistent=False)
        buf("kp_weights", kreg[:, support])
        buf("kp_template", v_template[support])
        buf("kp_shapedirs", shapedirs[support])
        buf("kp_posedirs", arrays["posedirs"][support].reshape(-1, arrays["posedirs"].shape[-1]).T)
        buf("kp_skin_weights", arrays["weights"][support])

    # ------------------------------------------------------------------ helpers
    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    def _betas(self, betas: torch.Tensor | None, B: int) -> torch.Tensor:
        if betas is None:
            return self.v_template.new_zeros(B, self.num_betas)
        if betas.dim() != 2 or betas.shape[0] != B:
            raise ValueError(f"betas: expected (B={B}, S), got {tuple(betas.shape)}")
        S = betas.shape[1]
        if S > self.num_betas:
            raise ValueError(f"betas: model has {self.num_betas} shape directions, got {S} coefficients")
        if S < self.num_betas:
            betas = torch.cat((betas, betas.new_zeros(B, self.num_betas - S)), dim=1)
        return betas.to(self.v_template.dtype)

    def _pose(self, global_orient, body_pose):
        R = kin.pose_to_rotmats(global_orient.to(self.v_template.dtype), body_pose.to(self.v_template.dtype))
        return R

    @staticmethod
    def _add_transl(x: torch.Tensor, transl: torch.Tensor | None) -> torch.Tensor:
        if transl is None:
            return x
        if transl.dim() != 2 or transl.shape != (x.shape[0], 3):
            raise ValueError(f"transl: expected (B={x.shape[0]}, 3), got {tuple(transl.shape)}")
        return x + transl[:, None].to(x.dtype)

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """betas: (B, S) -> (B, 24, 3) rest-pose joints."""
        return kin.blend_shapes(self._betas(betas, betas.shape[0]), self.J_template, self.J_shapedirs)

    # ------------------------------------------------------------------ evaluation
    def forward(self, betas, global_orient, body_pose, transl=None) -> BodyOutput:
        """Full model: shaped, pose-corrected, skinned mesh and posed joints (see class doc)."""
        R = self._pose(global_orient, body_pose)
        B = R.shape[0]
        b = self._betas(betas, B)
        v_shaped = kin.blend_shapes(b, self.v_template, self.shapedirs)
        J = kin.blend_shapes(b, self.J_template, self.J_shapedirs)
        # pose correctives: (B, 207) @ (207, V*3)
        v_posed = v_shaped + (kin.pose_feature(R) @ self.posedirs).reshape(B, -1, 3)
        G_rot, G_pos = kin.forward_kinematics(R, J, self.parents, self.levels)
        verts = kin.skin_points(v_posed, self.weights, G_rot, G_pos, J)
        return BodyOutput(self._add_transl(verts, transl), self._add_transl(G_pos, transl))

    def joints(self, betas, global_orient, body_pose, transl=None) -> torch.Tensor:
        """Joints only: (B, 24, 3), identical to ``forward(...).joints`` without skinning."""
        R = self._pose(global_orient, body_pose)
        J = kin.blend_shapes(self._betas(betas, R.shape[0]), self.J_template, self.J_shapedirs)
        _, G_pos = kin.forward_kinematics(R, J, self.parents, self.levels)
        return self._add_transl(G_pos, transl)

    def keypoints(self, betas, global_orient, body_pose, transl=None) -> torch.Tensor:
        """COCO-17 3D keypoints (B, 17, 3) from the keypoint regressor on the posed mesh.

        Only the vertices the regressor uses are shaped, pose-corrected and skinned, so this
        equals ``coco17_regressor @ forward(...).vertices`` at a fraction of the cost.
        """
        R = self._pose(global_orient, body_pose)
        B = R.shape[0]
        b = self._betas(betas, B)
        J = kin.blend_shapes(b, self.J_template, self.J_shapedirs)
        pts = kin.blend_shapes(b, self.kp_template, self.kp_shapedirs)
        pts = pts + (kin.pose_feature(R) @ self.kp_posedirs).reshape(B, -1, 3)
        G_rot, G_pos = kin.forward_kinematics(R, J, self.parents, self.levels)
        pts = kin.skin_points(pts, self.kp_skin_weights, G_rot, G_pos, J)
        # k: keypoint, s: support vertex
        return self._add_transl(torch.einsum("ks,bsc->bkc", self.kp_weights, pts), transl)

    def keypoints_from_vertices(self, vertices: torch.Tensor) -> torch.Tensor:
        """vertices: (B, V, 3) posed mesh -> (B, 17, 3) COCO-17 keypoints."""
        return torch.einsum("ks,bsc->bkc", self.kp_weights, vertices[:, self.kp_support])


def load_body_model(path: str | os.PathLike | None = None, device="cpu", dtype=torch.float32,
                    num_betas: int = 10) -> BodyModel:
    """Load an SMPL-format body model.

    path: .npz / official SMPL .pkl / directory with SMPL_NEUTRAL.*; None = the shipped default
        (:data:`DEFAULT_BODY_MODEL`)
    device, dtype: where and in which precision the model evaluates
    num_betas: shape coefficients to use (capped at what the file provides)
    """
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
    arrays = read_body_model_arrays(path)
    return BodyModel(arrays, num_betas=num_betas, dtype=dtype).to(device)


def body_model_from_config(config: BodyModelConfig, device="cpu") -> BodyModel:
    """Build the body model a :class:`BodyModelConfig` describes."""
    dtype = {"float32": torch.float32, "float64": torch.float64}.get(config.dtype)
    if dtype is None:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {config.dtype!r}")
    return load_body_model(config.path, device=device, dtype=dtype, num_betas=config.num_betas)


__all__ = ["BodyModel", "BodyModelConfig", "BodyOutput", "load_body_model", "body_model_from_config",
           "DEFAULT_BODY_MODEL", "NUM_SMPL_JOINTS"]
