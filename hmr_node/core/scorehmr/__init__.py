"""ScoreHMR (Stathopoulos et al., CVPR 2024): a pose-diffusion prior eps_phi(x_t, t, c) and the
guided DDIM inversion / sampling loop that refines regression estimates with 2D keypoints,
other views or neighbouring frames (single frame, multi-view, online video windows)."""
