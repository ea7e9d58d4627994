"""What the pipeline needs from wherever PicoSAM2 runs.

The core only ever calls ``infer`` on a batch of normalised crops; onnxruntime on the
host, the IMX500 and test doubles all fit behind this protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


class ModelLoadError(RuntimeError):
    """A model file that is missing, unreadable, or does not follow the PicoSAM2 input
    and output contract; the message says which."""


@runtime_checkable
class InferenceBackend(Protocol):
    """Maps (N, 3, S, S) float32 normalised crops to (N, S, S) float32 logits."""

    @property
    def name(self) -> str:
        """Short description for results and diagnostics, e.g. "onnxruntime:model.onnx"."""
        ...

    @property
    def input_size(self) -> int:
        """S, the side of the square model input in pixels (96 for PicoSAM2)."""
        ...

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Logits for every crop of the batch, (N, S, S) float32."""
        ...


#: Optional backend attribute ``box_prior_weight: float``: a box model's weight for
#: box-conditioned decoding (picosam2_ros.core.box_prior); absent or 0 = plain logits.
