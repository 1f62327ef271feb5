"""Learned priors over SMPL parameters (pose GMM)."""
