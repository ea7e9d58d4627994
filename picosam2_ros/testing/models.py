"""Small ONNX models with PicoSAM2's input/output contract, for tests, demo and benchmarks.

The colour-match model segments "the region whose colour matches the crop's centre
pixel", the same implicit centre prompt PicoSAM2 has. On synthetic scenes of flat
coloured shapes its masks are exact, so tests can assert real geometry (placement,
orientation, paste-back) through onnxruntime without a trained network.

Contract: input "image" [N, 3, 96, 96] float32 (ImageNet-normalised RGB, N dynamic),
output "logits" [N, 1, 96, 96], opset 17.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIDE = 96
OPSET = 17
#: Channels of the optional convolution stack that gives the model a realistic cost.
_HEAVY_CHANNELS = 32
#: PicoSAM2's cost per crop (multiply-accumulates), for ``extra_conv_macs``.
PICOSAM2_MACS = 336_000_000


def _save(model: onnx.ModelProto, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def _heavy_branch(
    source: str, extra_conv_macs: int
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """3x3 convolutions (32 channels, 96x96) worth about ``extra_conv_macs`` MACs whose
    result is multiplied by zero: the model then costs like PicoSAM2 while its logits
    stay exactly those of the colour match."""
    per_layer = 9 * _HEAVY_CHANNELS * _HEAVY_CHANNELS * SIDE * SIDE
    layers = max(1, math.ceil(extra_conv_macs / per_layer))
    rng = np.random.default_rng(0)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    current, channels = source, 3
    for i in range(layers):
        w = rng.normal(0.0, 0.05, (_HEAVY_CHANNELS, channels, 3, 3)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"heavy_w{i}"))
        nodes.append(
            helper.make_node("Conv", [current, f"heavy_w{i}"], [f"heavy_c{i}"], pads=[1, 1, 1, 1])
        )
        nodes.append(helper.make_node("Relu", [f"heavy_c{i}"], [f"heavy_r{i}"]))
        current, channels = f"heavy_r{i}", _HEAVY_CHANNELS
    inits.append(numpy_helper.from_array(np.zeros((1,), np.float32), "heavy_zero"))
    nodes.append(helper.make_node("ReduceMean", [current], ["heavy_mean"], axes=[1], keepdims=1))
    nodes.append(helper.make_node("Mul", ["heavy_mean", "heavy_zero"], ["heavy_out"]))
    return nodes, inits, "heavy_out"


def _colour_match_model(
    batch: int | str,
    tolerance: float,
    gain: float = 1.0,
    extra_conv_macs: int = 0,
    in_channels: int = 3,
    out_side: int = SIDE,
) -> onnx.ModelProto:
    """logits = gain * (tolerance - mean_c |x - x[:, :, 48, 48]|) (normalised units), optionally
    with a cost-only convolution branch, or deliberately off-contract shapes."""
    c = SIDE // 2
    inits = [
        numpy_helper.from_array(np.array([c, c], np.int64), "centre_start"),
        numpy_helper.from_array(np.array([c + 1, c + 1], np.int64), "centre_end"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "spatial_axes"),
        numpy_helper.from_array(np.array([tolerance], np.float32), "tolerance"),
        numpy_helper.from_array(np.array([gain], np.float32), "gain"),
    ]
    nodes = [
        helper.make_node(
            "Slice", ["image", "centre_start", "centre_end", "spatial_axes"], ["centre"]
        ),
        helper.make_node("Sub", ["image", "centre"], ["diff"]),
        helper.make_node("Abs", ["diff"], ["absdiff"]),
        helper.make_node("ReduceMean", ["absdiff"], ["distance"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["tolerance", "distance"], ["margin"]),
        helper.make_node("Mul", ["margin", "gain"], ["match"]),
    ]
    result = "match"
    if extra_conv_macs > 0:
        heavy_nodes, heavy_inits, heavy_out = _heavy_branch("image", extra_conv_macs)
        nodes += heavy_nodes
        inits += heavy_inits
        nodes.append(helper.make_node("Add", [result, heavy_out], ["match_heavy"]))
        result = "match_heavy"
    if out_side != SIDE:
        k = SIDE // out_side
        nodes.append(
            helper.make_node("MaxPool", [result], ["pooled"], kernel_shape=[k, k], strides=[k, k])
        )
        result = "pooled"
    nodes.append(helper.make_node("Identity", [result], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "colour_match",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.FLOAT, [batch, in_channels, SIDE, SIDE]
            )
        ],
        [
            helper.make_tensor_value_info(
                "logits", TensorProto.FLOAT, [batch, 1, out_side, out_side]
            )
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="picosam2_ros.testing"
    )
    model.ir_version = 8
    return model


def build_colour_match_model(
    path: str | Path, tolerance: float = 0.6, extra_conv_macs: int = 0, gain: float = 10.0
) -> Path:
    """Write the colour-match model (dynamic batch) to ``path``.

    logits = gain * (tolerance - mean over channels of |x - x[:, :, 48, 48]|).
    ``tolerance`` is in normalised units (about 57 grey levels each): pixels whose mean
    absolute channel difference to the crop centre is below it get a positive logit.
    ``gain`` only scales the logits (the mask is the same for any gain > 0); the default
    10 makes flat regions crisp, so their stability score is near 1 as for a confident
    model, where gain 1 would keep every logit inside the score's +-1 band.
    ``extra_conv_macs`` > 0 adds a convolution branch of about that many MACs per crop
    that does not change the logits (PICOSAM2_MACS makes it cost like PicoSAM2).
    """
    return _save(_colour_match_model("N", tolerance, gain, extra_conv_macs), path)


def build_fixed_batch_model(path: str | Path, tolerance: float = 0.6, gain: float = 10.0) -> Path:
    """The colour-match model exported with its batch fixed at 1, as some exporters do."""
    return _save(_colour_match_model(1, tolerance, gain), path)


def build_wrong_shape_model(path: str | Path, which: Literal["input", "output"]) -> Path:
    """A valid, runnable model that breaks the contract: one input channel instead of
    three ("input"), or 48x48 logits instead of 96x96 ("output")."""
    if which == "input":
        model = _colour_match_model("N", 0.6, in_channels=1)
    elif which == "output":
        model = _colour_match_model("N", 0.6, out_side=SIDE // 2)
    else:
        raise ValueError(f"which must be 'input' or 'output', got {which!r}")
    return _save(model, path)
