"""SMPL-format body models: the shipped free default and real SMPL files, evaluated in torch."""
from hmr_node.core.body.model import (
    DEFAULT_BODY_MODEL,
    BodyModel,
    BodyModelConfig,
    BodyOutput,
    body_model_from_config,
    load_body_model,
)

__all__ = ["DEFAULT_BODY_MODEL", "BodyModel", "BodyModelConfig", "BodyOutput", "body_model_from_config",
           "load_body_model"]
