"""Motion data: real motion capture (CMU, BVH, AMASS), retargeting to SMPL, synthetic motion."""
