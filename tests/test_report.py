"""Tests of hmr_node.tools.report: JSON benchmark reports and Markdown tables."""
from __future__ import annotations

import datetime
import json
import os
import shlex

import numpy as np
import pytest

from hmr_node.tools import report
from hmr_node.tools.report import collect_metadata, markdown_table, write_json_report


def test_round_trip_with_numpy_values(tmp_path):
    path = tmp_path / "nested" / "dir" / "bench.json"
    results = {
        "mpjpe_mm": np.float32(12.5),
        "n_frames": np.int64(300),
        "per_joint_mm": np.array([1.0, 2.5, 3.25]),
        "matrix": np.arange(6, dtype=np.int32).reshape(2, 3),
        "ok": np.bool_(True),
        "missing": float("nan"),
        "rows": [{"method": "regression", "p50_ms": np.float64(3.0)}],
        "shape": (2, 3),
    }
    written = write_json_report(path, results, argv=["hmr", "bench", "--name", "a b"])

    loaded = json.loads(path.read_text())
    assert loaded == written
    assert loaded["mpjpe_mm"] == 12.5 and type(loaded["mpjpe_mm"]) is float
    assert loaded["n_frames"] == 300 and type(loaded["n_frames"]) is int
    assert loaded["per_joint_mm"] == [1.0, 2.5, 3.25]
    assert loaded["matrix"] == [[0, 1, 2], [3, 4, 5]]
    assert loaded["ok"] is True
    assert loaded["missing"] is None  # strict JSON has no NaN
    assert loaded["rows"] == [{"method": "regression", "p50_ms": 3.0}]
    assert loaded["shape"] == [2, 3]
    assert loaded["meta"]["command"] == "hmr bench --name 'a b'"
    assert list(loaded)[0] == "meta"
    # indented, human readable
    assert path.read_text().startswith('{\n  "meta": {')


def test_extra_meta_is_merged_into_collected_metadata(tmp_path):
    written = write_json_report(tmp_path / "r.json", {"meta": {"seed": 7}, "x": 1}, argv=["a"])
    assert written["meta"]["seed"] == 7
    assert written["meta"]["command"] == "a"
    assert written["x"] == 1


def test_unserialisable_value_raises_type_error_naming_it(tmp_path):
    with pytest.raises(TypeError, match="object"):
        write_json_report(tmp_path / "r.json", {"x": object()}, argv=[])
    assert list(tmp_path.iterdir()) == []


def test_metadata_has_the_keys():
    meta = collect_metadata(["hmr", "bench", "x y"])
    assert set(meta) == {"command", "git_commit", "timestamp_utc", "machine", "versions",
                         "torch_threads"}
    assert meta["command"] == "hmr bench 'x y'"
    assert shlex.split(meta["command"]) == ["hmr", "bench", "x y"]
    stamp = datetime.datetime.fromisoformat(meta["timestamp_utc"])
    assert stamp.utcoffset() == datetime.timedelta(0)
    assert set(meta["machine"]) == {"hostname", "platform", "processor", "cpu_count",
                                    "ram_total_bytes", "gpu"}
    assert meta["machine"]["cpu_count"] == os.cpu_count()
    versions = meta["versions"]
    assert {"python", "numpy", "torch", "hmr_node"} <= set(versions)
    assert versions["numpy"] == np.__version__
    assert set(versions) <= {"python", "numpy", "torch", "scipy", "smplx", "roma", "onnx",
                             "onnxruntime", "opencv", "rosbags", "hmr_node"}
    assert isinstance(meta["torch_threads"], int) and meta["torch_threads"] >= 1
    commit = meta["git_commit"]
    assert commit is None or len(commit.removesuffix("-dirty")) == 40


def test_metadata_default_command_is_sys_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["prog", "--flag", "with space"])
    assert collect_metadata()["command"] == "prog --flag 'with space'"


def test_git_commit_is_none_outside_a_repository(tmp_path):
    assert report._git_commit(tmp_path) is None


def test_atomic_write_leaves_no_temp_file(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    write_json_report(path, {"a": 1}, argv=[])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    assert json.loads(path.read_text())["a"] == 1


def test_failed_write_keeps_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    path.write_text('{"old": true}')

    def failing_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(report.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_json_report(path, {"a": 1}, argv=[])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    assert json.loads(path.read_text()) == {"old": True}


def test_markdown_table_exact_string():
    rows = [
        {"method": "regression", "mpjpe_mm": 81.234, "frames": 300},
        {"method": "scorehmr", "mpjpe_mm": np.float32(64.75), "frames": np.int64(300),
         "note": "a|b"},
    ]
    assert markdown_table(rows) == (
        "| method | mpjpe_mm | frames | note |\n"
        "| --- | ---: | ---: | --- |\n"
        "| regression | 81.2 | 300 |  |\n"
        "| scorehmr | 64.8 | 300 | a\\|b |"
    )


def test_markdown_table_columns_and_float_format():
    rows = [{"a": 1.0, "b": 2.0, "c": None}]
    assert markdown_table(rows, columns=["b", "c"], float_format="{:.3f}") == (
        "| b | c |\n| ---: | --- |\n| 2.000 |  |"
    )


def test_markdown_table_rejects_bad_input():
    with pytest.raises(ValueError, match="column"):
        markdown_table([])
    with pytest.raises(TypeError, match="rows"):
        markdown_table({"a": 1})
    with pytest.raises(TypeError, match=r"rows\[1\]"):
        markdown_table([{"a": 1}, 3])


def test_missing_library_is_omitted_from_versions(monkeypatch):
    monkeypatch.setitem(report._VERSION_SOURCES, "nonexistent",
                        ("hmr_no_such_module_xyz", ("hmr-no-such-dist",)))
    versions = collect_metadata([])["versions"]
    assert "nonexistent" not in versions
    assert "numpy" in versions
