"""hmr_node.core runs with ROS and the runtime backends absent (DESIGN.md: the core never imports them)."""
import subprocess
import sys
import textwrap


def test_core_imports_and_works_without_ros_or_backends():
    code = textwrap.dedent("""
        import sys, pkgutil, importlib
        for name in ("rclpy", "onnxruntime", "tensorrt", "rosbags", "cv_bridge", "tf2_ros"):
            sys.modules[name] = None  # any import of these now raises ImportError
        import torch
        import hmr_node.core
        # import every core module
        for mod in pkgutil.walk_packages(hmr_node.core.__path__, "hmr_node.core."):
            importlib.import_module(mod.name)
        from tests.conftest import make_random_smpl_arrays
        from hmr_node.core.body.model import BodyModel
        from hmr_node.core.body.model_file import _normalise
        from pathlib import Path
        arrays = _normalise(make_random_smpl_arrays(), Path("random"))
        body = BodyModel(arrays)
        j = body.joints(torch.zeros(2, 10), torch.zeros(2, 3), torch.zeros(2, 69))
        assert j.shape == (2, 24, 3)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
