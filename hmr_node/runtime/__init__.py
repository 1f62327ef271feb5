"""Inference backends (torch / ONNX Runtime / TensorRT) behind one small runner interface."""
