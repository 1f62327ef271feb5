"""Joint orders used across hmr_node: SMPL's 24-joint tree, COCO-17 keypoints, LSP-14.

SMPL joints are parent-relative rotations; joint 0 (pelvis) carries ``global_orient``, joints
1..23 carry ``body_pose``. "left" is the person's left (towards +x in SMPL's canonical frame).
"""
from __future__ import annotations

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
NUM_SMPL_JOINTS = 24
NUM_BODY_JOINTS = 23  # body_pose excludes the root

# parent index of each SMPL joint (-1 for the root)
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)

# index of each joint's mirror image (left <-> right)
SMPL_FLIP_PERMUTATION: tuple[int, ...] = (
    0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22,
)

COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
NUM_COCO17 = 17
COCO17_FLIP_PERMUTATION: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

# The 14 LSP joints (R ankle, R knee, R hip, L hip, L knee, L ankle, R wrist, R elbow,
# R shoulder, L shoulder, L elbow, L wrist, neck, head) taken from SMPL's 24 joints.
LSP14_FROM_SMPL: tuple[int, ...] = (8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20, 12, 15)
