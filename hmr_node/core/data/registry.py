"""Motion registry: every motion hmr_node knows by name, loaded as SMPL :class:`MotionClip`.

Names
    * ``cmu/train/<stem>``, ``cmu/eval/<stem>``: CMU exp-map clips (``train/`` for training and
      tuning, ``eval/`` for reporting only), retargeted to the body;
    * ``bvh/<stem>``: CMU BVH clips (evaluation material only, never training), rest-pose first
      line dropped, one-frame spikes removed, retargeted to the body;
    * ``synthetic/<kind>``: procedural motion (:mod:`hmr_node.core.data.procedural`), varied by ``seed``.

``list_motions('train')`` = CMU train + synthetic kinds; ``list_motions('eval')`` = CMU eval +
BVH clips. The two lists never share a clip.

Data root: ``$HMR_CMU_DIR``, else ``<repo>/../shared/data/cmu``, else ``./shared/data/cmu``.
Retargeted clips are cached as ``.npz`` under ``$HMR_CACHE_DIR`` (default ``~/.cache/hmr_node``)
in ``motion/``, keyed by clip name, fps, a hash of the source file, a hash of the body-model
file and :data:`~hmr_node.core.data.retarget.RETARGET_VERSION`; each file carries the clip's
attribution.
"""
from __future__ import annotations

import difflib
import functools
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from hmr_node.core.body.model import load_body_model
from hmr_node.core.body.model_file import resolve_body_model_path
from hmr_node.core.data import bvh as bvhmod
from hmr_node.core.data import cmu
from hmr_node.core.data.motion import MotionClip
from hmr_node.core.data.procedural import PROCEDURAL_KINDS, ProceduralConfig, generate_motion
from hmr_node.core.data.retarget import (
    CMU_JOINT_MAP,
    RETARGET_VERSION,
    RetargetConfig,
    RetargetResult,
    Retargeter,
    bvh_source,
    cmu_source,
)

SPLITS = ("train", "eval")
BVH_ATTRIBUTION = cmu.CMU_ATTRIBUTION + " BVH conversion by B. Hahne (cgspeed)."


def cmu_data_dir() -> Path:
    """The CMU data directory (see module docstring); FileNotFoundError naming the places tried."""
    env = os.environ.get("HMR_CMU_DIR")
    if env:  # an explicit setting is used or refused, never silently replaced
        p = Path(env).expanduser()
        if not (p / "skeleton.json").is_file():
            raise FileNotFoundError(f"HMR_CMU_DIR={env}: no skeleton.json there (expected the CMU data directory)")
        return p
    repo = Path(__file__).resolve().parents[3]
    tried = [repo.parent / "shared" / "data" / "cmu", Path.cwd() / "shared" / "data" / "cmu"]
    for p in tried:
        if (p / "skeleton.json").is_file():
            return p
    raise FileNotFoundError("CMU motion data not found (no skeleton.json) in: " + ", ".join(map(str, tried))
                            + "; set HMR_CMU_DIR to the directory of the CMU README")


def cache_dir() -> Path:
    """``$HMR_CACHE_DIR/motion`` (default ``~/.cache/hmr_node/motion``)."""
    return Path(os.environ.get("HMR_CACHE_DIR", "~/.cache/hmr_node")).expanduser() / "motion"


def _source_files(root: Path) -> dict[str, Path]:
    """Registry name -> source file for every CMU/BVH clip."""
    files: dict[str, Path] = {}
    for split in SPLITS:
        for f in sorted((root / split).glob("*/*.txt")):
            name = f"cmu/{split}/{f.stem}"
            if name in files:
                raise ValueError(f"CMU data: two clips named {name!r} ({files[name]} and {f})")
            files[name] = f
    for f in sorted((root / "bvh").glob("*.bvh")):
        files[f"bvh/{f.stem}"] = f
    return files


def list_motions(split: str) -> list[str]:
    """Motion names of a split.

    split: 'train' (CMU train + synthetic kinds) or 'eval' (CMU eval + BVH clips)
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    files = _source_files(cmu_data_dir())
    if split == "train":
        return [n for n in files if n.startswith("cmu/train/")] + [f"synthetic/{k}" for k in PROCEDURAL_KINDS]
    return [n for n in files if n.startswith("cmu/eval/")] + [n for n in files if n.startswith("bvh/")]


def split_of(name: str) -> str:
    """'train' or 'eval' for a registry name (ValueError for unknown names)."""
    for split in SPLITS:
        if name in list_motions(split):
            return split
    _unknown(name)


def _unknown(name: str):
    known = list_motions("train") + list_motions("eval")
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else "; known prefixes: cmu/train/, cmu/eval/, bvh/, synthetic/"
    raise ValueError(f"name: unknown motion {name!r}{hint}")


def _file_hash(path: Path) -> str:
    st = path.stat()
    return _file_hash_cached(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _file_hash_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def retargeter_for(body_path: str | os.PathLike | None = None, fps: float = 30.0) -> Retargeter:
    """The (memoised) CMU retargeter for a body file (None = shipped default) at ``fps``."""
    return _retargeter(str(resolve_body_model_path(body_path)), float(fps))


@functools.lru_cache(maxsize=4)
def _retargeter(body_path: str, fps: float) -> Retargeter:
    return Retargeter(load_body_model(body_path), CMU_JOINT_MAP, RetargetConfig(fps=fps))


@functools.lru_cache(maxsize=1)
def _cmu_skeleton(root: str) -> cmu.CmuSkeleton:
    return cmu.load_cmu_skeleton(root)


def retarget_motion(name: str, fps: float = 30.0, body_path: str | os.PathLike | None = None) -> RetargetResult:
    """Retarget one CMU or BVH registry clip now (no cache), with its per-frame errors.

    name: 'cmu/<split>/<stem>' or 'bvh/<stem>'
    fps: output rate, Hz
    body_path: SMPL-format body file (None = the shipped default)
    """
    root = cmu_data_dir()
    files = _source_files(root)
    if name not in files:
        _unknown(name)
    rt = retargeter_for(body_path, fps)
    if name.startswith("cmu/"):
        sk = _cmu_skeleton(str(root))
        src = cmu_source(cmu.read_cmu_clip(files[name], sk), sk, fps, name)
    else:
        sk = _cmu_skeleton(str(root))
        motion = bvhmod.read_bvh(files[name], skip_first_frame=True)
        src = bvh_source(motion, fps, sk.units_to_metres, name, BVH_ATTRIBUTION)
    return rt.retarget(src)


def load_motion(name: str, fps: float = 30.0, seed: int = 0, body_path: str | os.PathLike | None = None
                ) -> MotionClip:
    """One motion by registry name, as SMPL parameters at ``fps``.

    name: see module docstring (e.g. 'cmu/train/walking_1', 'bvh/07_01', 'synthetic/walk')
    fps: output rate, Hz
    seed: variation of synthetic motion (ignored for captured motion)
    body_path: SMPL-format body file the motion is for (None = the shipped default)
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected str, got {type(name).__name__}")
    if not fps > 0:
        raise ValueError(f"fps: must be > 0, got {fps}")
    if name.startswith("synthetic/"):
        kind = name[len("synthetic/"):]
        if kind not in PROCEDURAL_KINDS:
            _unknown(name)
        body = load_body_model(body_path)
        return generate_motion(kind, seed=seed, body=body, config=ProceduralConfig(fps=fps))
    root = cmu_data_dir()
    files = _source_files(root)
    if name not in files:
        _unknown(name)
    body_file = resolve_body_model_path(body_path)
    key = "_".join([name.replace("/", "-"), f"{float(fps):g}fps", _file_hash(files[name]), _file_hash(body_file),
                    f"v{RETARGET_VERSION}"])
    path = cache_dir() / f"{key}.npz"
    if path.is_file():
        try:
            return _read_cached(path)
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache entry: rebuild it
    result = retarget_motion(name, fps, body_file)
    _write_cached(path, result)
    return result.clip


def _write_cached(path: Path, result: RetargetResult) -> None:
    clip = result.clip
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, name=clip.name, fps=clip.fps, global_orient=clip.global_orient, body_pose=clip.body_pose,
                     transl=clip.transl, betas=clip.betas, source=clip.source, synthetic=clip.synthetic,
                     attribution=clip.attribution, retarget_mean_error_mm=result.mean_error_mm,
                     retarget_scale=result.scale, retarget_version=RETARGET_VERSION)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read_cached(path: Path) -> MotionClip:
    with np.load(path, allow_pickle=False) as z:
        return MotionClip(
            name=str(z["name"]), fps=float(z["fps"]), global_orient=z["global_orient"], body_pose=z["body_pose"],
            transl=z["transl"], betas=z["betas"], source=str(z["source"]), synthetic=bool(z["synthetic"]),
            attribution=str(z["attribution"]),
        )
