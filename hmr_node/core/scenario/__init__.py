"""Synthetic robot scenarios: robot path and odometry noise, people placement, occlusion,
a simulated 2D keypoint detector and a shaded body renderer (pure numpy/torch/cv2)."""
