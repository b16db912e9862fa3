"""Frame-by-frame inference over a video stream with a clip model (TMANet or a baseline).

``StreamingSegmenter(model, mode)`` turns a model with the contract interface (``memory_length``, ``extract``,
``decode``, ``forward``) into a causal per-frame predictor:

* ``mode="streaming"``: caches the ``extract()`` outputs (backbone features) of the last T frames, so every step
  runs the backbone once (plus the decoder on the cached memory);
* ``mode="recompute"``: keeps the last T images and calls ``model.forward`` on the whole (T+1)-frame window at
  every step, i.e. the backbone runs T+1 times per frame, as the official TMANet code does at test time.

At the start of a stream (or after ``reset()``) the first frame is repeated T times to fill the memory (the
author's advice, TMANet issue #23).

Other memory layouts: ``memory_positions`` maps a frame's position in the stream (0-based) to the positions of its
T memory frames, oldest first (each <= the current position; the current one may be repeated), and ``max_lag`` is
the largest ``position - memory position`` it ever returns, i.e. how many past frames the stream keeps. For CFFM's
t-9, t-6, t-3 with its first-frames table (``bench.data.memory.memory_positions`` with the ``cffm`` preset) that is
9. The default rule is the consecutive one above: ``[max(p - T + i, 0) for i in range(T)]``.

Keyframe models (``keyframe_interval`` k >= 1: ``baselines.dff``, ``baselines.accel``) follow a fixed schedule
instead: frames 0, k, 2k, ... of a stream are keyframes. ``streaming`` keeps the last keyframe's features
(``model.key_features``, run once per keyframe) and segments every frame from them (``model.from_key``, which
estimates the flow to the keyframe); ``recompute`` keeps the last k-1 images and calls ``model.forward`` on the
k-frame window with the keyframe ``keyframe_offset`` = (frame index mod k) frames back, so the keyframe's
network runs again at every frame. ``last_frame_type`` says whether the last step was a "key" or a "non_key"
frame (always "key" for other models' streams). Both modes give the same output for a model in eval mode, equal to
``model.forward`` on the clip ``[memory..., current]``.

Flow: ``step(frame, flow)`` passes ``flow`` through to the model unchanged. For a model that needs ground-truth
flow (``flow_warp`` with ``flow_source="ground_truth"``) the caller passes ``flow (B, T, 2, H, W)`` from the
current frame to each of the T memory slots, oldest slot first (with the repeated first frame at stream start,
the flow to a repeated slot is the flow to that first frame). RAFT-based models compute flow from the cached
images themselves and ignore ``flow``.

Usage::

    from bench.models.streaming import StreamingSegmenter
    model.eval()
    stream = StreamingSegmenter(model, mode="streaming")
    for frame in video:                            # frame (B, 3, H, W), ImageNet-normalised
        logits = stream.step(frame)                # (B, num_classes, H, W)
    stream.reset()                                 # before the next video
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

STREAM_MODES: tuple[str, ...] = ("streaming", "recompute")


def consecutive_positions(memory_length: int) -> Callable[[int], list[int]]:
    """The default rule: frames p-T .. p-1, the first frame of the stream standing in for missing ones."""
    return lambda position: [max(position - memory_length + i, 0) for i in range(memory_length)]


class StreamingSegmenter:
    """Causal per-frame inference with a memory of ``model.memory_length`` earlier frames (module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        mode: str = "streaming",
        memory_positions: Callable[[int], Sequence[int]] | None = None,
        max_lag: int | None = None,
    ) -> None:
        if mode not in STREAM_MODES:
            raise ValueError(f"unknown streaming mode {mode!r}; choose one of {', '.join(STREAM_MODES)}")
        self.model = model
        self.mode = mode
        self.memory_length = int(model.memory_length)
        self.keyframe_interval = int(getattr(model, "keyframe_interval", 0) or 0)
        if memory_positions is not None and (max_lag is None or self.keyframe_interval):
            raise ValueError("memory_positions needs max_lag, and keyframe models follow their own schedule")
        self.memory_positions = memory_positions or consecutive_positions(self.memory_length)
        self.max_lag = self.memory_length if memory_positions is None else int(max_lag)
        self._memory: dict[int, Tensor] = {}  # position -> features (streaming) or image (recompute)
        self._position = 0
        self._key: dict | None = None
        self.last_frame_type = "key"

    def reset(self) -> None:
        """Forget the memory; the next frame starts a new stream."""
        self._memory.clear()
        self._position, self._key = 0, None

    @torch.no_grad()
    def step(self, frame: Tensor, flow: Tensor | None = None) -> Tensor:
        """Segment ``frame`` (B, 3, H, W) given the previous frames: -> logits (B, num_classes, H, W).

        ``flow`` (B, T, 2, H, W), current frame -> memory slots, only for ground-truth-flow models.
        """
        if frame.dim() != 4:
            raise ValueError(f"frame must be (B, 3, H, W), got {tuple(frame.shape)}")
        if self.keyframe_interval:
            return self._keyframe_step(frame, flow)
        position, t = self._position, self.memory_length
        self._memory[position] = self.model.extract(frame) if self.mode == "streaming" else frame
        memory = [self._stored(p) for p in self.memory_positions(position)] if t else []
        if self.mode == "streaming":
            logits = self.model.decode(self._memory[position], memory, flow, (frame.shape[-2], frame.shape[-1]))["out"]
        else:
            logits = self.model(torch.stack([*memory, frame], dim=1), flow)["out"]
        self._memory.pop(position - self.max_lag, None)  # what no later frame can ask for
        self._position += 1
        return logits

    def _stored(self, position: int) -> Tensor:
        if position not in self._memory:
            raise ValueError(
                f"memory position {position} of frame {self._position} is not kept (max_lag {self.max_lag}, "
                f"positions must lie in [{self._position - self.max_lag}, {self._position}])"
            )
        return self._memory[position]

    def _keyframe_step(self, frame: Tensor, flow: Tensor | None) -> Tensor:
        """One frame of a keyframe model's schedule (see the module docstring) -> logits (B, C, H, W).

        ``flow`` (B, k-1, 2, H, W), current frame -> the k-1 previous frames oldest first (ground truth only).
        """
        k, t, position = self.keyframe_interval, self.memory_length, self._position
        offset = position % k
        self.last_frame_type = "key" if offset == 0 else "non_key"
        if self.mode == "streaming":
            if offset == 0:
                self._key = self.model.key_features(frame)
            key_flow = flow[:, t - offset] if flow is not None and offset > 0 else None
            logits = self.model.from_key(self._key, frame, key_flow, offset)["out"]
        else:
            self._memory[position] = frame
            window = [self._memory[p] for p in self.memory_positions(position)] if t else []
            logits = self.model(torch.stack([*window, frame], dim=1), flow, keyframe_offset=offset)["out"]
            self._memory.pop(position - self.max_lag, None)
        self._position += 1
        return logits
