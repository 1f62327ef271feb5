"""The ``hmr`` command line: scenarios, replay, benchmarks, training and export (no rclpy)."""
