"""Benchmark reports: JSON files that say what ran, where, with what, and a Markdown table.

Every benchmark of the project writes its results through :func:`write_json_report`, so a
number in ``docs/BENCHMARKS.md`` can always be traced to a command, a commit, a machine and
the library versions that produced it::

    from hmr_node.tools.report import markdown_table, write_json_report

    report = write_json_report("out/bench/regressor.json", {"results": rows})
    print(markdown_table(rows, ["method", "mpjpe_mm", "pa_mpjpe_mm"]))

The JSON layout is ``{"meta": {...}, **results}``; see :func:`collect_metadata` for ``meta``.
Values are converted to plain JSON: numpy/torch scalars and arrays become numbers and
(nested) lists, tuples become lists, paths become strings, and non-finite floats (NaN, inf),
which strict JSON cannot hold, become ``null``.
"""
from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import pathlib
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

# name in the report -> (module, distributions that may provide it)
_VERSION_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "numpy": ("numpy", ("numpy",)),
    "torch": ("torch", ("torch",)),
    "scipy": ("scipy", ("scipy",)),
    "smplx": ("smplx", ("smplx",)),
    "roma": ("roma", ("roma",)),
    "onnx": ("onnx", ("onnx",)),
    "onnxruntime": ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
    "opencv": ("cv2", ("opencv-python-headless", "opencv-python",
                       "opencv-contrib-python-headless", "opencv-contrib-python")),
    "rosbags": ("rosbags", ("rosbags",)),
    "hmr_node": ("hmr_node", ("hmr_node",)),
}

_GIT_TIMEOUT_S = 10.0


def _package_dir() -> pathlib.Path:
    """Directory of the installed ``hmr_node`` package (this file's grandparent)."""
    return pathlib.Path(__file__).resolve().parent.parent


def _git_commit(repo_dir: pathlib.Path) -> str | None:
    """HEAD of the git work tree containing ``repo_dir``, ``-dirty`` if tracked files changed.

    Like ``git describe --dirty``, only changes to tracked files (staged or not) count;
    untracked files do not. ``None`` when git is missing or ``repo_dir`` is not in a repo.
    """
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo_dir), *args],
            check=True, capture_output=True, text=True, timeout=_GIT_TIMEOUT_S,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if changes else commit


def _total_ram_bytes() -> int | None:
    """Physical memory in bytes, or ``None`` where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _module_version(module_name: str, distributions: tuple[str, ...]) -> str | None:
    """Version of ``module_name`` if it can be imported, ``None`` if it cannot be found.

    A module already imported reports its ``__version__``. Otherwise the version comes from
    the installed distribution's metadata, found without importing the module (importing
    roma, smplx or cv2 just to read a version costs seconds and has side effects); only a
    module without distribution metadata is imported.
    """
    module = sys.modules.get(module_name)
    if module is None:
        try:
            if importlib.util.find_spec(module_name) is None:
                return None
        except (ImportError, ValueError):
            return None
    elif isinstance(getattr(module, "__version__", None), str):
        return module.__version__
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        module = importlib.import_module(module_name)
    except Exception:  # noqa: BLE001 - a broken optional dependency is just "not available"
        return None
    return str(getattr(module, "__version__", "unknown"))


def _gpu_name() -> str | None:
    """Name of CUDA device 0 as torch sees it, ``None`` without torch or a GPU."""
    try:
        import torch
        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    except Exception:  # noqa: BLE001
        pass
    return None


def _torch_threads() -> int | None:
    try:
        import torch
        return int(torch.get_num_threads())
    except Exception:  # noqa: BLE001
        return None


def collect_metadata(argv: list[str] | None = None) -> dict:
    """What produced a benchmark result: command, commit, time, machine, library versions.

    Args:
        argv: the command line as a list of words; default ``sys.argv``. It is joined with
            :func:`shlex.join`, so the ``command`` string can be pasted back into a shell.

    Returns:
        ``{"command": str, "git_commit": str | None, "timestamp_utc": str (ISO 8601),
        "machine": {"hostname", "platform", "processor", "cpu_count", "ram_total_bytes",
        "gpu"}, "versions": {name: version}, "torch_threads": int | None}``.
        ``git_commit`` is the HEAD of the repository holding the ``hmr_node`` package with a
        ``-dirty`` suffix when tracked files have uncommitted changes, ``None`` when git or
        the repository is unavailable. ``versions`` lists python and those of numpy, torch,
        scipy, smplx, roma, onnx, onnxruntime, opencv (cv2), rosbags and hmr_node that
        import; missing ones are omitted.
    """
    if argv is None:
        argv = list(sys.argv)
    if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence):
        raise TypeError(f"argv must be a list of strings, got {type(argv).__name__}")
    words = [str(word) for word in argv]

    versions: dict[str, str] = {"python": platform.python_version()}
    for name, (module_name, distributions) in _VERSION_SOURCES.items():
        version = _module_version(module_name, distributions)
        if version is not None:
            versions[name] = version

    return {
        "command": shlex.join(words),
        "git_commit": _git_commit(_package_dir()),
        "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "machine": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "ram_total_bytes": _total_ram_bytes(),
            "gpu": _gpu_name(),
        },
        "versions": versions,
        "torch_threads": _torch_threads(),
    }


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (dict, list, str, int, float, bool, None).

    numpy/torch scalars and arrays become Python numbers and nested lists, tuples and sets
    become lists, mapping keys become strings, ``os.PathLike`` becomes ``str``, and
    non-finite floats become ``None``. Raises ``TypeError`` naming the type it cannot convert.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(to_jsonable(k)) if not isinstance(k, str) else k: to_jsonable(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((to_jsonable(v) for v in value), key=repr)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    torch = sys.modules.get("torch")  # only if the caller already imported it
    if torch is not None and isinstance(value, torch.Tensor):
        return to_jsonable(value.detach().cpu().tolist())
    raise TypeError(f"cannot write a value of type {type(value).__name__} to JSON: {value!r}")


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temporary file next to ``path`` for writing ('w' text or 'wb' binary); on a clean
    exit it is flushed to disk and renamed over ``path`` (readers see the old file or the whole
    new one), on an exception it is removed. Parent directories are created."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode: expected 'w' or 'wb', got {mode!r}")
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def write_json_report(path: str | os.PathLike, results: dict,
                      argv: list[str] | None = None) -> dict:
    """Write ``{"meta": collect_metadata(argv), **results}`` as indented JSON, atomically.

    Args:
        path: the ``.json`` file to write; missing parent directories are created.
        results: the benchmark's results (numpy/torch values allowed, see :func:`to_jsonable`).
            If it holds a ``"meta"`` dict, its keys are added to the collected metadata
            (and win over collected keys of the same name), e.g. ``{"meta": {"seed": 0}}``.
        argv: the command line recorded in ``meta.command``; default ``sys.argv``.

    Returns:
        The dict as written (plain JSON types), equal to ``json.load`` of the file.

    The file is written to a temporary file in the same directory, flushed to disk and
    renamed over ``path``, so a reader sees the old file or the complete new one, never a
    half-written one; on error the temporary file is removed.
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a dict, got {type(results).__name__}")
    meta = collect_metadata(argv)
    extra_meta = results.get("meta")
    if extra_meta is not None:
        if not isinstance(extra_meta, Mapping):
            raise TypeError(f"results['meta'] must be a dict, got {type(extra_meta).__name__}")
        meta.update(extra_meta)
    report = to_jsonable({"meta": meta, **{k: v for k, v in results.items() if k != "meta"}})
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"

    with atomic_open(path, "w") as handle:
        handle.write(text)
    return report


def _format_cell(value: Any, float_format: str) -> str:
    if value is None:
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        text = float_format.format(value)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def markdown_table(rows: list[dict], columns: list[str] | None = None,
                   float_format: str = "{:.1f}") -> str:
    """A GitHub Markdown table of ``rows``, one line per row, ending without a newline.

    Args:
        rows: one dict per table row, column name -> value.
        columns: column names in order; default every key of ``rows`` in order of first
            appearance. A key missing from a row, and ``None``, give an empty cell.
        float_format: ``str.format`` pattern for floats (Python and numpy); ints and other
            values use ``str``.

    Columns whose non-empty cells are all numbers are right-aligned (``---:``). ``|`` in a
    cell is escaped and newlines become spaces, so a cell cannot break the table.
    """
    if isinstance(rows, Mapping) or not isinstance(rows, Sequence):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"rows[{i}] must be a dict, got {type(row).__name__}")
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    columns = [str(column) for column in columns]
    if not columns:
        raise ValueError("markdown_table needs at least one column: rows and columns are empty")

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    separators = []
    for column in columns:
        values = [row.get(column) for row in rows if row.get(column) is not None]
        numeric = bool(values) and all(_is_number(v) for v in values)
        separators.append("---:" if numeric else "---")
    lines = [line([_format_cell(c, float_format) for c in columns]), line(separators)]
    lines += [line([_format_cell(row.get(c), float_format) for c in columns]) for row in rows]
    return "\n".join(lines)
