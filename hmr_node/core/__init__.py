"""The core of hmr_node: pure numpy/torch code that runs without ROS or runtime backends.

Conventions (fixed here, once, for the whole package)
-----------------------------------------------------
Units
    metres, seconds, radians; pixels for image coordinates.
Frames (REP-103/105)
    * camera outputs are in the camera **optical** frame: x right, y down, z forward;
    * world outputs are in ``odom`` (or ``map``): x forward, y left, z up;
    * SMPL's canonical frame is y-up, the body facing +z, left hand towards +x;
    * the fixed rotations between them live in :mod:`hmr_node.core.geometry.frames`.
Rotations
    rotation matrices are the internal currency. 6D = the first two **columns** of R,
    ``R[..., :, :2].reshape(..., 6)`` (ScoreHMR/HMR2 layout; pytorch3d uses rows). Axis-angle
    at SMPL I/O; quaternions only at the ROS boundary, in ROS order (x, y, z, w). See
    :mod:`hmr_node.core.geometry.rotations`.
SMPL vocabulary (as in smplx)
    ``betas``, ``global_orient``, ``body_pose``, ``transl``; joints in SMPL's 24-joint order
    (:mod:`hmr_node.core.body.skeleton`). 2D detections are COCO-17 ``(x, y, conf)`` in pixels.
Shapes
    one line per argument in docstrings, e.g. ``pose: (B, T, 24, 3, 3) parent-relative
    rotations``. Letters: B batch, T time, J joints, V vertices, K keypoints, N samples.
Configuration
    one frozen dataclass per component; defaults live only there. Public entry points raise
    ``ValueError``/``TypeError`` naming the bad input; ``assert`` is for internal invariants.
"""
