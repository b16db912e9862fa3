"""Frame-by-frame inference over a video stream with a clip model (TMANet or a baseline).

``StreamingSegmenter(model, mode)`` turns a model with the contract interface (``memory_length``, ``extract``,
``decode``, ``forward``) into a causal per-frame predictor:

* ``mode="streaming"``: caches the ``extract()`` outputs (backbone features) of the last T frames, so every step
  runs the backbone once (plus the decoder on the cached memory);
* ``mode="recompute"``: keeps the last T images and calls ``model.forward`` on the whole (T+1)-frame window at
  every step, i.e. the backbone runs T+1 times per frame, as the official TMANet code does at test time.

At the start of a stream (or after ``reset()``) the first frame is repeated T times to fill the memory (the
author's advice, TMANet issue #23). Both modes give the same output for a model in eval mode, equal to
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

from collections import deque

import torch
from torch import Tensor, nn

STREAM_MODES: tuple[str, ...] = ("streaming", "recompute")


class StreamingSegmenter:
    """Causal per-frame inference with a memory of the last ``model.memory_length`` frames."""

    def __init__(self, model: nn.Module, mode: str = "streaming") -> None:
        if mode not in STREAM_MODES:
            raise ValueError(f"unknown streaming mode {mode!r}; choose one of {', '.join(STREAM_MODES)}")
        self.model = model
        self.mode = mode
        self.memory_length = int(model.memory_length)
        self._memory: deque = deque(maxlen=max(self.memory_length, 1))

    def reset(self) -> None:
        """Forget the memory; the next frame starts a new stream."""
        self._memory.clear()

    @torch.no_grad()
    def step(self, frame: Tensor, flow: Tensor | None = None) -> Tensor:
        """Segment ``frame`` (B, 3, H, W) given the previous frames: -> logits (B, num_classes, H, W).

        ``flow`` (B, T, 2, H, W), current frame -> memory slots, only for ground-truth-flow models.
        """
        if frame.dim() != 4:
            raise ValueError(f"frame must be (B, 3, H, W), got {tuple(frame.shape)}")
        t = self.memory_length
        if self.mode == "streaming":
            current = self.model.extract(frame)
            if t and not self._memory:
                self._memory.extend([current] * t)
            memory = list(self._memory) if t else []
            logits = self.model.decode(current, memory, flow, (frame.shape[-2], frame.shape[-1]))["out"]
            stored = current
        else:
            if t and not self._memory:
                self._memory.extend([frame] * t)
            window = [*self._memory, frame] if t else [frame]
            logits = self.model(torch.stack(window, dim=1), flow)["out"]
            stored = frame
        if t:
            self._memory.append(stored)  # deque(maxlen=T) drops the oldest
        return logits
