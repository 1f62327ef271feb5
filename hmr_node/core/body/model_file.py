"""Reading SMPL-format body model files: the shipped default, official SMPL ``.pkl``/``.npz``.

A body model file holds (V vertices, F faces, B shape directions):

* ``v_template`` (V, 3) rest mesh (T-pose, y up, facing +z), metres
* ``shapedirs`` (V, 3, B) shape blend shapes
* ``posedirs`` (V, 3, 207) or (V*3, 207) pose-corrective blend shapes
* ``J_regressor`` (24, V) joint regressor (dense or scipy.sparse)
* ``weights`` (V, 24) linear-blend-skinning weights
* ``kintree_table`` (2, 24) row 0 = parent of each joint (root: 4294967295 or -1)
* ``f`` (F, 3) triangles
* optional ``coco17_regressor`` (17, V); without it, one is built for SMPL-topology meshes
  (nose, eyes and ears from SMPL vertex ids, the rest from the joint regressor).

Official SMPL ``.pkl`` files pickle ``chumpy`` objects, and chumpy does not import on
Python 3.11 / numpy 2: :class:`_ChumpyFreeUnpickler` maps every chumpy class to a stub that
keeps the pickled state, and the stub's ``x`` array is taken instead.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from hmr_node.core.body.skeleton import COCO17_NAMES, NUM_SMPL_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS

DEFAULT_BODY_MODEL = str(Path(__file__).resolve().parent / "assets" / "hmr_neutral.npz")

REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")

# Vertex ids of the face keypoints on SMPL's 6890-vertex topology (as used by smplx's
# SMPL-H vertex ids: nose, eyes, ears).
SMPL_TOPOLOGY_VERTICES = 6890
SMPL_FACE_VERTEX_IDS = {"nose": 332, "right_eye": 6260, "left_eye": 2800, "right_ear": 4071, "left_ear": 583}
# smplx's extra-joint vertex ids for SMPL topology (its default 'smplh' table).
SMPLX_SMPL_VERTEX_IDS = {
    "nose": 332, "reye": 6260, "leye": 2800, "rear": 4071, "lear": 583, "rthumb": 6191,
    "rindex": 5782, "rmiddle": 5905, "rring": 6016, "rpinky": 6133, "lthumb": 2746,
    "lindex": 2319, "lmiddle": 2445, "lring": 2556, "lpinky": 2673, "LBigToe": 3216,
    "LSmallToe": 3226, "LHeel": 3387, "RBigToe": 6617, "RSmallToe": 6624, "RHeel": 6787,
}


class _ChumpyStub:
    """Stand-in for chumpy objects inside official SMPL pickles; keeps the pickled state."""

    def __init__(self, *args, **kwargs):
        self._state = None

    def __setstate__(self, state):
        self._state = state

    def to_array(self) -> np.ndarray:
        state = self._state
        if isinstance(state, dict) and "x" in state:
            return np.asarray(state["x"])
        raise ValueError("a chumpy object in the SMPL file has no 'x' array; cannot read it without chumpy")


class _ChumpyFreeUnpickler(pickle.Unpickler):
    """Unpickler that resolves chumpy classes to :class:`_ChumpyStub` and allows only data classes."""

    _ALLOWED_PREFIXES = ("numpy", "scipy.sparse", "builtins", "collections", "copy_reg", "copyreg", "_codecs")

    def find_class(self, module: str, name: str):
        if module.startswith("chumpy"):
            return _ChumpyStub
        if module.startswith(self._ALLOWED_PREFIXES):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a body model file")


def _to_plain(value):
    if isinstance(value, _ChumpyStub):
        return value.to_array()
    if hasattr(value, "toarray") and hasattr(value, "nnz"):  # scipy.sparse
        return value.toarray()
    return value


def resolve_body_model_path(path: str | os.PathLike | None) -> Path:
    """A file, or a directory holding SMPL_NEUTRAL.{pkl,npz} (optionally under ``smpl/``)."""
    if path is None:
        return Path(DEFAULT_BODY_MODEL)
    p = Path(path).expanduser()
    if p.is_dir():
        for cand in ("SMPL_NEUTRAL.pkl", "SMPL_NEUTRAL.npz", "smpl/SMPL_NEUTRAL.pkl", "smpl/SMPL_NEUTRAL.npz",
                     "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl", "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"):
            if (p / cand).is_file():
                return p / cand
        raise FileNotFoundError(f"path: no SMPL_NEUTRAL.pkl/.npz found in directory {p}")
    if not p.is_file():
        raise FileNotFoundError(f"path: body model file not found: {p}")
    return p


def read_body_model_arrays(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Load a body model file into plain numpy arrays (see module docstring for keys).

    path: .npz, .pkl (official SMPL, chumpy-free), a directory, or None for the shipped default
    returns: dict with at least REQUIRED_KEYS plus ``coco17_regressor`` (17, V) and
        ``smplx_vertex_ids`` (dict name -> vertex id, for loading through smplx)
    """
    p = resolve_body_model_path(path)
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
    elif p.suffix == ".pkl":
        with open(p, "rb") as fh:
            raw = _ChumpyFreeUnpickler(fh, encoding="latin1").load()
        if not isinstance(raw, dict):
            raise ValueError(f"path: {p} does not hold a dict of SMPL arrays (got {type(raw).__name__})")
    else:
        raise ValueError(f"path: unsupported body model file type {p.suffix!r} ({p}); use .npz or .pkl")
    arrays = {k: _to_plain(v) for k, v in raw.items()}
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"path: {p} is missing SMPL keys {missing}")
    return _normalise(arrays, p)


def _normalise(a: dict, p: Path) -> dict[str, np.ndarray]:
    out: dict = {}
    v = np.asarray(a["v_template"], dtype=np.float64)
    V = v.shape[0]
    out["v_template"] = v
    sd = np.asarray(a["shapedirs"], dtype=np.float64)
    out["shapedirs"] = sd.reshape(V, 3, -1)
    pd = np.asarray(a["posedirs"], dtype=np.float64)
    out["posedirs"] = pd.reshape(V, 3, -1)
    out["J_regressor"] = np.asarray(a["J_regressor"], dtype=np.float64)
    out["weights"] = np.asarray(a["weights"], dtype=np.float64)
    kt = np.asarray(a["kintree_table"]).astype(np.int64)
    parents = kt[0].copy()
    parents[0] = -1
    if parents.shape[0] != NUM_SMPL_JOINTS or tuple(parents.tolist()) != SMPL_PARENTS:
        raise ValueError(f"path: {p} has kintree parents {parents.tolist()}, expected SMPL's {list(SMPL_PARENTS)}")
    out["parents"] = parents
    out["f"] = np.asarray(a["f"]).astype(np.int64)
    for key, shape in (("J_regressor", (NUM_SMPL_JOINTS, V)), ("weights", (V, NUM_SMPL_JOINTS))):
        if out[key].shape != shape:
            raise ValueError(f"path: {p} key {key} has shape {out[key].shape}, expected {shape}")
    if "coco17_regressor" in a:
        out["coco17_regressor"] = np.asarray(a["coco17_regressor"], dtype=np.float64)
    elif V == SMPL_TOPOLOGY_VERTICES:
        out["coco17_regressor"] = _coco17_regressor_for_smpl_topology(out["J_regressor"], V)
    else:
        raise ValueError(f"path: {p} has no coco17_regressor and is not SMPL topology ({V} vertices)")
    if "smplx_vertex_ids" in a and "smplx_vertex_ids_names" in a:
        out["smplx_vertex_ids"] = {str(n): int(i) for n, i in zip(a["smplx_vertex_ids_names"], a["smplx_vertex_ids"])}
    elif V == SMPL_TOPOLOGY_VERTICES:
        out["smplx_vertex_ids"] = dict(SMPLX_SMPL_VERTEX_IDS)
    for key in ("name", "version", "license"):
        if key in a:
            out[key] = str(np.asarray(a[key]))
    out["source_path"] = str(p)
    return out


def _coco17_regressor_for_smpl_topology(J_regressor: np.ndarray, V: int) -> np.ndarray:
    """COCO-17 on SMPL topology: face keypoints at fixed vertices, body keypoints at joints."""
    reg = np.zeros((len(COCO17_NAMES), V))
    for k, name in enumerate(COCO17_NAMES):
        if name in SMPL_FACE_VERTEX_IDS:
            reg[k, SMPL_FACE_VERTEX_IDS[name]] = 1.0
        else:
            reg[k] = J_regressor[SMPL_JOINT_NAMES.index(name)]
    return reg
