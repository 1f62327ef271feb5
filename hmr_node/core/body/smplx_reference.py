"""Build an ``smplx.SMPL`` on any file :func:`read_body_model_arrays` reads (the reference in tests
and benchmarks, and proof that the shipped body loads through smplx)."""
from __future__ import annotations

import os

import numpy as np
import torch

from hmr_node.core.body.model_file import read_body_model_arrays


def smplx_model(path: str | os.PathLike | None = None, num_betas: int = 10, dtype=torch.float32, batch_size: int = 1):
    """An smplx.SMPL instance for the body model file at ``path`` (None = shipped default)."""
    import smplx  # imported here: only the reference needs it

    a = read_body_model_arrays(path)
    kt = np.stack([np.where(a["parents"] < 0, 4294967295, a["parents"]), np.arange(len(a["parents"]))]).astype(np.int64)
    struct = smplx.utils.Struct(
        v_template=a["v_template"], shapedirs=a["shapedirs"], posedirs=a["posedirs"],
        J_regressor=a["J_regressor"], weights=a["weights"], kintree_table=kt, f=a["f"],
    )
    return smplx.SMPL(model_path=str(a["source_path"]), data_struct=struct, vertex_ids=a.get("smplx_vertex_ids"),
                      num_betas=num_betas, dtype=dtype, batch_size=batch_size)
