"""Keypoint regressor: COCO-17 2D keypoints + intrinsics -> SMPL pose, shape, translation, features."""
