"""Causal, bounded-delay ScoreHMR video refinement: an online sliding window per track.

Upstream ScoreHMR refines whole tracklets offline. Here each track owns an
:class:`OnlineWindowRefiner`; frames are pushed as they arrive and come back refined a fixed
number of frames later.

Window schedule (W = ``window``, S = ``stride``, L = ``lookahead``, all in ScoreHmrConfig)
---------------------------------------------------------------------------------------
Frames wait in a pending list. When S + L frames are pending, one window is refined: the
pending frames, preceded by up to ``W - S - L`` already-emitted frames of the same segment as
fixed context (they only enter the temporal term, so the new estimates continue the emitted
ones without a seam, and cost no denoiser calls). The oldest S pending frames are emitted;
the L newest stay pending and are refined again, with more future, by the next window.

Latency: frame i is emitted when frame i + d arrives, with L <= d <= L + S - 1 frames
(``ScoreHmrConfig.latency_frames``), plus the compute time of one window. At 30 fps the
default W = 16, S = 8, L = 2 gives 2-9 frames (67-300 ms).

Trade-off: every frame gets at least L frames of future and ``W - S - L`` of (fixed) past
context; a larger L smooths better at the price of delay; a smaller S lowers the worst-case
delay but refines a window more often (compute per frame ~ (S + L) / S window-frames);
W beyond S + L + 2 adds only fixed context (cheap). W = 1 (so S = 1, L = 0) is per-frame
refinement with no delay and no temporal term.

Track end and gaps: :meth:`flush` refines and emits everything pending (delay <= L + S - 1).
A gap between stamps above ``max_gap_s``, or a stamp that does not increase, flushes the
segment first, and the next frame starts a new one (no temporal term across the gap).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hmr_node.core.regressor.output import KeypointObservation, RegressorOutput
from hmr_node.core.scorehmr.refiner import ScoreHmrRefiner

__all__ = ["OnlineWindowRefiner", "EmittedFrame"]


@dataclass
class EmittedFrame:
    """One frame's final estimate.

    index: frame number within the track (0 = first pushed)
    stamp: the frame's stamp, seconds
    pose6d: (144,) refined 6D pose, [0] global orientation in the optical frame
    betas: (10,) shape
    transl: (3,) SMPL transl in the optical frame, metres
    refined: False = the regression estimate, unchanged (see reason)
    reason: '' or why it was not refined / lost its keypoint term
    delay_frames: frames pushed after this one before it was emitted
    """

    index: int
    stamp: float
    pose6d: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    refined: bool
    reason: str
    delay_frames: int


@dataclass
class _Frame:
    index: int
    stamp: float
    reg: RegressorOutput
    obs: KeypointObservation | None


class OnlineWindowRefiner:
    """Sliding-window ScoreHMR refinement of one track (see the module docstring).

    refiner: the ScoreHmrRefiner; its config's window, stride, lookahead and max_gap_s apply
    """

    def __init__(self, refiner: ScoreHmrRefiner):
        if not isinstance(refiner, ScoreHmrRefiner):
            raise TypeError(f"refiner: expected ScoreHmrRefiner, got {type(refiner).__name__}")
        self.refiner = refiner
        cfg = refiner.config
        self.window, self.stride, self.lookahead = cfg.window, cfg.stride, cfg.lookahead
        self.context_len = cfg.window - cfg.stride - cfg.lookahead
        self.max_gap_s = cfg.max_gap_s
        self._pending: list[_Frame] = []
        self._context: list[torch.Tensor] = []  # emitted pose6d of the current segment
        self._last_stamp: float | None = None
        self._next_index = 0
        self.windows_refined = 0
        self.denoiser_samples = 0

    @property
    def num_pending(self) -> int:
        """Frames pushed but not yet emitted."""
        return len(self._pending)

    def push(self, reg: RegressorOutput, obs: KeypointObservation | None, stamp: float) -> list[EmittedFrame]:
        """Add one frame of the track.

        reg: RegressorOutput with B = 1 (this frame's regression)
        obs: KeypointObservation with B = 1, or None (no keypoint guidance for this frame)
        stamp: seconds (e.g. header.stamp)
        returns: frames emitted by this push, oldest first (possibly none)
        """
        if not isinstance(reg, RegressorOutput) or reg.pose6d.shape[0] != 1:
            raise ValueError(f"reg: expected a RegressorOutput with one row, got {getattr(reg, 'pose6d', reg)!r:.80}")
        if obs is not None and (not isinstance(obs, KeypointObservation) or obs.uv.shape[0] != 1):
            raise ValueError("obs: expected None or a KeypointObservation with one row")
        stamp = float(stamp)
        if stamp != stamp:
            raise ValueError("stamp: NaN")
        out: list[EmittedFrame] = []
        if self._last_stamp is not None and not (0 < stamp - self._last_stamp <= self.max_gap_s):
            out += self.flush()  # gap or time jump: close the segment
        self._last_stamp = stamp
        self._pending.append(_Frame(self._next_index, stamp, reg, obs))
        self._next_index += 1
        if len(self._pending) >= self.stride + self.lookahead:
            out += self._refine_and_emit(self.stride)
        return out

    def flush(self) -> list[EmittedFrame]:
        """Refine and emit every pending frame (track ended or a gap); the next push starts a
        new segment without context."""
        out = self._refine_and_emit(len(self._pending)) if self._pending else []
        self._context = []
        return out

    def reset(self) -> None:
        """Drop everything pending without emitting it."""
        self._pending, self._context, self._last_stamp = [], [], None

    # ------------------------------------------------------------------ internals
    def _refine_and_emit(self, count: int) -> list[EmittedFrame]:
        frames = self._pending
        reg = RegressorOutput(*(torch.cat([getattr(f.reg, k) for f in frames])
                                for k in ("pose6d", "betas", "transl", "features")))
        no_obs = [f.obs is None for f in frames]
        obs = None
        if not all(no_obs):
            template = next(f.obs for f in frames if f.obs is not None)
            parts = [f.obs if f.obs is not None else KeypointObservation(
                torch.zeros_like(template.uv), torch.zeros_like(template.conf), template.K.clone(),
                template.image_size.clone()) for f in frames]
            obs = KeypointObservation(*(torch.cat([getattr(p, k) for p in parts])
                                        for k in ("uv", "conf", "K", "image_size")))
        n_ctx = min(self.context_len, len(self._context))
        context = torch.stack(self._context[len(self._context) - n_ctx:]) if n_ctx else None
        res = self.refiner.refine_window(reg, obs, context=context)
        self.windows_refined += 1
        self.denoiser_samples += res.num_denoiser_samples
        latest = frames[-1].index
        out = []
        for i in range(count):
            f = frames[i]
            reason = res.reason[i]
            if no_obs[i] and obs is not None and reason.startswith("keypoints ignored"):
                reason = "keypoints ignored: no observation"
            out.append(EmittedFrame(f.index, f.stamp, res.pose6d[i], res.betas[i], res.transl[i],
                                    bool(res.refined[i]), reason, latest - f.index))
            self._context.append(res.pose6d[i].detach())
        self._context = self._context[-self.context_len:] if self.context_len else []
        self._pending = frames[count:]
        return out
