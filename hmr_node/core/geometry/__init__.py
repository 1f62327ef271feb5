"""Rotations, camera models and the fixed frame transforms of hmr_node."""
