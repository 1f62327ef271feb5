"""The pose denoiser eps_phi(x_t, t, c) of ScoreHMR (paper Sec. 4.2), and its checkpoint files.

Architecture (Sec. 4.2): a linear layer projects the noisy 144-D 6D pose ``x_t`` to features
``h``; each of ``num_blocks`` (3) residual MLP blocks conditions its input on the timestep by
scale and shift, ``h_t = (1 + t_s) * LN(h) + t_b`` with ``(t_s, t_b) = Linear(MLP(psi(t)))``
(psi = sinusoidal encoding; ``1 + t_s`` is the paper's ``t_s`` re-parametrised so a zero
output is the identity), then concatenates the conditioning vector ``c`` and applies
``Linear -> SiLU -> Linear`` added back to ``h``. A final LayerNorm and a zero-initialised
linear layer give the epsilon prediction, so an untrained model predicts eps = 0.

The module is forward-only friendly: plain Linear/LayerNorm/SiLU ops, dynamic batch, exports
to ONNX (inputs ``x_t`` float (B, 144), ``t`` int64 (B,), ``c`` float (B, C)).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

__all__ = ["DenoiserConfig", "PoseDenoiser", "DEFAULT_DENOISER", "load_denoiser", "save_denoiser",
           "CHECKPOINT_FORMAT"]

DEFAULT_DENOISER = Path(__file__).resolve().parents[2] / "models" / "denoiser" / "denoiser.pt"
CHECKPOINT_FORMAT = "hmr_node.pose_denoiser/1"


@dataclass(frozen=True)
class DenoiserConfig:
    """pose_dim: size of x (24 joints x 6D = 144); cond_dim: size of c (must equal the
    regressor's ``RegressorConfig.feature_dim``; 0 = unconditional); hidden_dim: width of the
    residual stream (keep it >= pose_dim: at small t eps is nearly a copy of x_t, and on a toy
    set a 64-wide stream plateaued at twice the loss of a 128-wide one); num_blocks: residual
    MLP blocks (3 in the paper); time_embed_dim: size of
    the sinusoidal timestep encoding psi(t); max_period: longest period of psi, in timesteps."""

    pose_dim: int = 144
    cond_dim: int = 128
    hidden_dim: int = 256
    num_blocks: int = 3
    time_embed_dim: int = 128
    max_period: float = 10000.0

    def __post_init__(self):
        for name in ("pose_dim", "hidden_dim", "num_blocks", "time_embed_dim"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        if not isinstance(self.cond_dim, int) or self.cond_dim < 0:
            raise ValueError(f"cond_dim: expected an int >= 0, got {self.cond_dim!r}")
        if self.time_embed_dim % 2:
            raise ValueError(f"time_embed_dim: expected an even number, got {self.time_embed_dim}")


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float) -> torch.Tensor:
    """psi(t): (B,) timesteps (int or float) -> (B, dim) [cos(t w_k), sin(t w_k)], w_k geometric
    from 1 down to 1/max_period (Vaswani et al. 2017; the transformer/DDPM encoding)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.to(torch.float32)[:, None] * freqs[None]
    return torch.cat((torch.cos(args), torch.sin(args)), dim=-1)


class DenoiserBlock(nn.Module):
    """One residual MLP block: timestep scale/shift, then [h_t, c] -> Linear -> SiLU -> Linear."""

    def __init__(self, hidden_dim: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_dim, elementwise_affine=False)
        self.time_film = nn.Linear(hidden_dim, 2 * hidden_dim)
        self.fc1 = nn.Linear(hidden_dim + cond_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.act = nn.SiLU()

    def forward(self, h: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """h: (B, H) features; scale, shift: (B, H) or (1, H) from ``time_film`` of the
        timestep embedding; c: (B, C) -> (B, H)."""
        h_t = self.norm(h) * (1 + scale) + shift                      # h_t = t_s h + t_b
        return h + self.fc2(self.act(self.fc1(torch.cat((h_t, c), dim=-1))))  # concat c


class PoseDenoiser(nn.Module):
    """eps_phi(x_t, t, c): predicts the noise added to a 6D pose (epsilon parametrisation)."""

    def __init__(self, config: DenoiserConfig = DenoiserConfig()):
        super().__init__()
        if not isinstance(config, DenoiserConfig):
            raise TypeError(f"config: expected DenoiserConfig, got {type(config).__name__}")
        self.config = config
        H = config.hidden_dim
        self.in_proj = nn.Linear(config.pose_dim, H)
        self.time_mlp = nn.Sequential(nn.Linear(config.time_embed_dim, H), nn.SiLU(), nn.Linear(H, H))
        self.blocks = nn.ModuleList(DenoiserBlock(H, config.cond_dim) for _ in range(config.num_blocks))
        self.act = nn.SiLU()
        self.out_norm = nn.LayerNorm(H)
        self.out_proj = nn.Linear(H, config.pose_dim)
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)
        self.metadata: dict = {}

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x_t: (B, pose_dim) noisy 6D pose
        t: (B,) timesteps in [0, T] (int64 or float)
        c: (B, cond_dim) conditioning features (the regressor's ``features``)
        returns: (B, pose_dim) predicted noise eps
        """
        return self.forward_conditioned(x_t, self.time_conditioning(t), c)

    def time_conditioning(self, t: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """t: (B,) -> per block the (scale, shift) pair, each (B, hidden_dim). Depends on t
        only, so a sampler that reuses timesteps can compute it once per timestep."""
        temb = self.act(self.time_mlp(sinusoidal_embedding(t, self.config.time_embed_dim, self.config.max_period)))
        return [block.time_film(temb).chunk(2, dim=-1) for block in self.blocks]

    def forward_conditioned(self, x_t: torch.Tensor, time_cond: list, c: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with the output of :meth:`time_conditioning` (rows broadcast)."""
        h = self.in_proj(x_t)
        for block, (scale, shift) in zip(self.blocks, time_cond):
            h = block(h, scale, shift, c)
        return self.out_proj(self.out_norm(h))

    def check_inputs(self, x_t: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> None:
        """Raise ValueError/TypeError naming the first malformed input (not called by forward,
        which stays traceable for export)."""
        for name, v in (("x_t", x_t), ("t", t), ("c", c)):
            if not isinstance(v, torch.Tensor):
                raise TypeError(f"{name}: expected a torch.Tensor, got {type(v).__name__}")
        cfg = self.config
        if x_t.dim() != 2 or x_t.shape[1] != cfg.pose_dim:
            raise ValueError(f"x_t: expected (B, {cfg.pose_dim}), got {tuple(x_t.shape)}")
        B = x_t.shape[0]
        if t.shape != (B,):
            raise ValueError(f"t: expected ({B},), got {tuple(t.shape)}")
        if c.shape != (B, cfg.cond_dim):
            raise ValueError(f"c: expected ({B}, {cfg.cond_dim}), got {tuple(c.shape)}")


def save_denoiser(path: str | os.PathLike, model: PoseDenoiser, config: DenoiserConfig | None = None,
                  metadata: dict | None = None) -> Path:
    """Write a checkpoint: {'format', 'config' (dict), 'state_dict', 'metadata'}.

    path: destination .pt file (parent directories are created)
    model: the denoiser to save
    config: its DenoiserConfig (None = ``model.config``)
    metadata: JSON-like dict (training data, steps, wall time, metrics, the DDIM schedule ...)
    returns: the path written
    """
    if not isinstance(model, PoseDenoiser):
        raise TypeError(f"model: expected PoseDenoiser, got {type(model).__name__}")
    config = model.config if config is None else config
    if config != model.config:
        raise ValueError(f"config: {config} differs from the model's {model.config}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, "config": asdict(config), "state_dict": state,
                "metadata": dict(metadata or {})}, tmp)
    os.replace(tmp, path)
    return path


def load_denoiser(path: str | os.PathLike | None = None, device="cpu") -> PoseDenoiser:
    """Load a checkpoint written by :func:`save_denoiser` (None = the shipped weights).

    path: .pt checkpoint, or None for ``hmr_node/models/denoiser/denoiser.pt``
    device: where to put the model
    returns: PoseDenoiser in eval mode; its ``metadata`` attribute holds the checkpoint metadata
    """
    path = DEFAULT_DENOISER if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no denoiser checkpoint at {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"path: {path} is not a {CHECKPOINT_FORMAT} checkpoint (format={got!r})")
    known = {f.name for f in fields(DenoiserConfig)}
    unknown = set(ckpt["config"]) - known
    if unknown:
        raise ValueError(f"path: {path} config has unknown fields {sorted(unknown)}")
    model = PoseDenoiser(DenoiserConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    model.metadata = dict(ckpt.get("metadata", {}))
    return model.to(device).eval()
