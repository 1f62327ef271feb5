"""Shared fixtures: a random SMPL-format body written to disk (SMPL topology size, so smplx's
default vertex ids apply), used to compare our body model against smplx independently of the
shipped asset."""
from __future__ import annotations

import numpy as np
import pytest

from hmr_node.core.body.skeleton import SMPL_PARENTS


def make_random_smpl_arrays(seed: int = 0, V: int = 6890, num_betas: int = 10) -> dict:
    rng = np.random.default_rng(seed)
    v = rng.normal(scale=0.3, size=(V, 3))
    J_reg = np.zeros((24, V))
    for j in range(24):
        idx = rng.choice(V, size=12, replace=False)
        w = rng.random(12)
        J_reg[j, idx] = w / w.sum()
    weights = rng.random((V, 24)) ** 4
    weights /= weights.sum(1, keepdims=True)
    parents = np.array(SMPL_PARENTS, dtype=np.int64)
    parents[0] = 4294967295
    return {
        "v_template": v,
        "shapedirs": rng.normal(scale=0.02, size=(V, 3, num_betas)),
        "posedirs": rng.normal(scale=0.01, size=(V, 3, 207)),
        "J_regressor": J_reg,
        "weights": weights,
        "kintree_table": np.stack([parents, np.arange(24)]),
        "f": rng.integers(0, V, size=(2000, 3)),
    }


@pytest.fixture(scope="session")
def random_smpl_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("smpl") / "SMPL_NEUTRAL.npz"
    np.savez(path, **make_random_smpl_arrays())
    return path
