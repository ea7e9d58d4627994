"""PicoSAM2 on the host CPU with onnxruntime.

The model contract is checked when the file is loaded, so a wrong file fails at start-up
with a message that says what is wrong instead of on the first frame with a shape error
deep inside onnxruntime.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort

from picosam2_ros.backends.base import ModelLoadError
from picosam2_ros.core.box_prior import BOX_PRIOR_WEIGHT_KEY


def _is_static(dim: object) -> bool:
    return isinstance(dim, int) and dim > 0


def _shape_text(shape: list[object]) -> str:
    return "[" + ",".join(str(d) if _is_static(d) else str(d or "?") for d in shape) + "]"


def _opset(path: Path) -> str:
    """The model's default-domain opset, read with the onnx package when it is present
    (onnxruntime itself does not expose it)."""
    try:
        import onnx
    except ImportError:
        return "unknown"
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return "unknown"
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return str(entry.version)
    return "unknown"


class OnnxBackend:
    """A PicoSAM2-contract ONNX model: input [N, 3, S, S] float32 (S static), output
    [N, 1, S, S] or [N, S, S] logits.

    A batch goes to onnxruntime in one call when the model's batch dimension is dynamic;
    a model exported with a fixed batch (usually 1) is run chunk by chunk.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelLoadError(f"model file not found: {self.path}")
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read model file {self.path}: {exc}") from exc
        if not data:
            raise ModelLoadError(f"model file is empty: {self.path}")

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelLoadError(
                f"{self.path} is not a loadable ONNX model: {str(exc).strip()}"
            ) from exc

        self._input_size, self._fixed_batch = self._check_contract()
        self.batch_dynamic = self._fixed_batch == 0
        inp = self._session.get_inputs()[0]
        self._input_name: str = inp.name
        self._output_name: str = self._session.get_outputs()[0].name
        self.info: dict[str, str] = {
            "path": str(self.path.resolve()),
            "sha256": hashlib.sha256(data).hexdigest()[:12],
            "size_bytes": str(len(data)),
            "input_shape": _shape_text(list(inp.shape)),
            "opset": _opset(self.path),
            "execution_provider": self._session.get_providers()[0],
            "threads": str(threads),
        }
        self.box_prior_weight = self._read_box_prior_weight()
        if self.box_prior_weight > 0.0:
            self.info["box_prior_weight"] = f"{self.box_prior_weight:g}"
        self._check_output_by_running()

    @property
    def name(self) -> str:
        return f"onnxruntime:{self.path.name}"

    @property
    def input_size(self) -> int:
        return self._input_size

    def _read_box_prior_weight(self) -> float:
        """The box-conditioned decoding weight stored in the model (0 when absent)."""
        meta = self._session.get_modelmeta().custom_metadata_map or {}
        text = meta.get(BOX_PRIOR_WEIGHT_KEY)
        if text is None:
            return 0.0
        try:
            weight = float(text)
        except ValueError:
            weight = math.nan
        if not math.isfinite(weight) or weight < 0.0:
            raise self._fail(f"metadata {BOX_PRIOR_WEIGHT_KEY}={text!r} is not a number >= 0")
        return weight

    def _fail(self, what: str) -> ModelLoadError:
        return ModelLoadError(f"{self.path} does not follow the PicoSAM2 contract: {what}")

    def _check_contract(self) -> tuple[int, int]:
        """Input side S and the fixed batch size (0 when the batch is dynamic)."""
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise self._fail(f"expected 1 input (the image crop), found {len(inputs)}")
        inp = inputs[0]
        shape = list(inp.shape)
        if inp.type != "tensor(float)":
            raise self._fail(f"input {inp.name!r} must be float32, is {inp.type}")
        if len(shape) != 4 or shape[1] != 3:
            raise self._fail(f"input {inp.name!r} must be [N,3,S,S], is {_shape_text(shape)}")
        side = shape[2]
        if not (isinstance(side, int) and side > 0 and shape[3] == side):
            raise self._fail(
                f"input {inp.name!r} must be square with a fixed side [N,3,S,S], "
                f"is {_shape_text(shape)}"
            )

        out = self._session.get_outputs()[0]
        out_shape = list(out.shape)
        if out.type != "tensor(float)":
            raise self._fail(f"output {out.name!r} must be float32, is {out.type}")
        spatial = out_shape[-2:]
        ok_rank = len(out_shape) == 3 or (len(out_shape) == 4 and out_shape[1] == 1)
        ok_side = all(not _is_static(d) or d == side for d in spatial)
        if not (ok_rank and ok_side):
            raise self._fail(
                f"output {out.name!r} must be [N,1,{side},{side}] or [N,{side},{side}], "
                f"is {_shape_text(out_shape)}"
            )
        batch = shape[0]
        return side, (batch if isinstance(batch, int) and batch > 0 else 0)

    def _check_output_by_running(self) -> None:
        """Run one blank crop: catches models whose output shape is only known at run
        time, and makes the first real frame as fast as the following ones."""
        s = self._input_size
        try:
            logits = self.infer(np.zeros((1, 3, s, s), dtype=np.float32))
        except ModelLoadError:
            raise
        except Exception as exc:
            raise self._fail(f"a test inference failed: {str(exc).strip()}") from exc
        if logits.shape != (1, s, s):
            raise self._fail(f"a test inference returned shape {logits.shape}")

    def _run(self, batch: np.ndarray) -> np.ndarray:
        out = self._session.run([self._output_name], {self._input_name: batch})[0]
        arr = np.asarray(out, dtype=np.float32)
        s = self._input_size
        if arr.size != batch.shape[0] * s * s:
            raise self._fail(
                f"output has shape {arr.shape} for a batch of {batch.shape[0]}; "
                f"expected [{batch.shape[0]},1,{s},{s}]"
            )
        return arr.reshape(batch.shape[0], s, s)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) float32 -> (N, S, S) float32 logits."""
        s = self._input_size
        if batch.ndim != 4 or batch.shape[1:] != (3, s, s):
            raise ValueError(f"batch must be (N, 3, {s}, {s}), got {batch.shape}")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        n = batch.shape[0]
        if n == 0:
            return np.empty((0, s, s), dtype=np.float32)
        if self._fixed_batch == 0 or self._fixed_batch == n:
            return self._run(batch)
        k = self._fixed_batch
        out = np.empty((n, s, s), dtype=np.float32)
        for start in range(0, n, k):
            chunk = batch[start : start + k]
            m = chunk.shape[0]
            if m < k:  # pad the last chunk up to the model's fixed batch
                chunk = np.concatenate([chunk, np.zeros((k - m, 3, s, s), np.float32)])
            out[start : start + m] = self._run(chunk)[:m]
        return out
