"""Diffusion building blocks shared by the learned priors: noise schedules and the DDIM scheduler."""
from hmr_node.core.diffusion.ddim import DdimConfig, DdimScheduler, DdimStepOutput
from hmr_node.core.diffusion.schedule import cosine_alpha_bar

__all__ = ["DdimConfig", "DdimScheduler", "DdimStepOutput", "cosine_alpha_bar"]
