"""hmr_node: 3D bodies (SMPL pose and shape) of the people around a robot.

Layers (see docs/DESIGN.md): ``core`` (body model, geometry, diffusion, ScoreHMR, DiffOpt,
metrics, data; no ROS, no runtime backends), ``runtime`` (torch / ONNX Runtime / TensorRT
runners), ``ros`` (thin nodes), ``tools`` (the ``hmr`` CLI: scenarios, replay, benchmarks,
training, export).
"""

__version__ = "0.1.0"
