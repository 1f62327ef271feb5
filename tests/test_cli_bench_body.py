import json

from hmr_node.tools.cli import main


def test_bench_body_writes_report_with_speedup(tmp_path, random_smpl_npz):
    out = tmp_path / "body.json"
    rc = main(["bench", "body", "--json", str(out), "--batch-sizes", "1", "8", "--repeats", "2",
               "--body-model", str(random_smpl_npz)])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert set(rep["batches"]) == {"1", "8"}
    for r in rep["batches"].values():
        assert all(r[k] > 0 for k in ("forward_ms", "joints_ms", "keypoints_ms", "smplx_forward_ms"))
    assert rep["speedup_vs_smplx_b8"] == rep["batches"]["8"]["smplx_forward_ms"] / rep["batches"]["8"]["joints_ms"]
    assert "command" in rep["meta"] and "versions" in rep["meta"]


def test_cli_rejects_bad_batch_size(tmp_path, random_smpl_npz, capsys):
    rc = main(["bench", "body", "--json", str(tmp_path / "x.json"), "--batch-sizes", "0",
               "--body-model", str(random_smpl_npz)])
    assert rc == 2
    assert "batch_sizes" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
