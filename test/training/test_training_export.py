"""ONNX export: contract, parity with PyTorch, dynamic batch, int8 tolerance, opset."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from training_fixtures import picosam2_with_statistics

from training.export import (
    check_onnx,
    export_onnx,
    fp32_parity,
    mask_agreement,
    quantize_int8,
    run_onnx,
    upsample_as_copies,
)
from training.model import PicoSAM2


@pytest.fixture(scope="module")
def model() -> PicoSAM2:
    """A PicoSAM2 with non-trivial BatchNorm statistics and a centred output."""
    return picosam2_with_statistics(0)


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.standard_normal((24, 3, 96, 96)).astype(np.float32)
    # Smooth structure so the logits vary across each crop.
    yy, xx = np.mgrid[0:96, 0:96] / 96.0
    img += np.sin(6 * xx + rng.uniform(0, 6, (24, 1, 1, 1))) * np.cos(4 * yy)
    return img.astype(np.float32)


@pytest.fixture(scope="module")
def fp32_path(model, tmp_path_factory):
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "m.onnx")


def test_export_contract_and_parity(model, fp32_path, inputs) -> None:
    m = check_onnx(fp32_path)
    assert m.graph.input[0].name == "image" and m.graph.output[0].name == "logits"
    assert fp32_parity(model, fp32_path, inputs) < 1e-4
    # Dynamic batch: 1 and 5 give the same per-crop results.
    one = run_onnx(fp32_path, inputs[:1])
    five = run_onnx(fp32_path, inputs[:5])
    assert one.shape == (1, 1, 96, 96) and five.shape == (5, 1, 96, 96)
    np.testing.assert_allclose(one[0], five[0], atol=1e-5)


def test_int8_within_tolerance(fp32_path, inputs, tmp_path) -> None:
    int8 = quantize_int8(fp32_path, tmp_path / "m_int8.onnx", inputs[:16])
    assert int8.stat().st_size < fp32_path.stat().st_size / 3
    ref, got = run_onnx(fp32_path, inputs[16:]), run_onnx(int8, inputs[16:])
    # Logits in units of the fp32 spread; masks must mostly agree.
    err = np.abs(ref - got).mean() / ref.std()
    assert err < 0.15, err
    centred = ref - np.median(ref)
    assert mask_agreement(centred, got - np.median(ref)) > 0.8
    # Tuned for onnxruntime on CPU: the 3-channel input conv stays float (its weight is
    # a float initializer, not a DequantizeLinear output) and no Resize is left.
    m = onnx.load(str(int8))
    ops = [n.op_type for n in m.graph.node]
    assert "Resize" not in ops and ops.count("Expand") == 4
    first = next(n for n in m.graph.node if n.op_type == "Conv")
    assert first.input[0] == "image"
    assert first.input[1] in {t.name for t in m.graph.initializer}


def test_upsample_as_copies_is_bit_identical(tmp_path) -> None:
    """DequantizeLinear -> Resize (nearest x2) -> QuantizeLinear and its uint8 copy
    rewrite give the same bytes, for any batch size."""
    init = [
        helper.make_tensor("s", TensorProto.FLOAT, [], [0.05]),
        helper.make_tensor("z", TensorProto.UINT8, [], [7]),
        helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2]),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node(
            "Resize",
            ["xd", "", "scales"],
            ["up"],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),
        helper.make_node("QuantizeLinear", ["up", "s", "z"], ["uq"]),
        helper.make_node("DequantizeLinear", ["uq", "s", "z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, 6, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5, 12, 14])],
        init,
    )
    path = tmp_path / "up.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    x = np.random.default_rng(1).uniform(-0.3, 12, (3, 5, 6, 7)).astype(np.float32)

    def run(p):
        import onnxruntime as ort

        return ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[
            0
        ]

    before = run(path)
    assert upsample_as_copies(path) == 1
    assert "Resize" not in [n.op_type for n in onnx.load(str(path)).graph.node]
    np.testing.assert_array_equal(run(path), before)
    np.testing.assert_array_equal(before, np.repeat(np.repeat(before[:, :, ::2, ::2], 2, 2), 2, 3))


def test_wrong_opset_is_refused(model, tmp_path) -> None:
    with pytest.raises(SystemExit, match="unsupported opset 11"):
        export_onnx(model, tmp_path / "x.onnx", opset=11)
    node = helper.make_node("Identity", ["image"], ["logits"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 96, 96])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, 96, 96])],
    )
    path = tmp_path / "old.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(SystemExit, match="opset 13, expected 17"):
        check_onnx(path)


def test_wrong_contract_and_missing_file(tmp_path) -> None:
    node = helper.make_node("Identity", ["image"], ["logits"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, 64, 64])],
    )
    path = tmp_path / "small.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(SystemExit, match=r"input must be \[N,3,96,96\]"):
        check_onnx(path)
    with pytest.raises(SystemExit, match="ONNX model not found"):
        check_onnx(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(SystemExit, match="not a valid ONNX model"):
        check_onnx(tmp_path / "junk.onnx")


def test_box_prior_weight_travels_in_the_onnx_file(fp32_path, tmp_path) -> None:
    """The weight export stores is the one the package's backend and the evaluation
    read back; a second store replaces, not duplicates, it."""
    import shutil

    from picosam2_ros.backends.onnx_backend import OnnxBackend
    from training.evaluate import onnx_box_prior_weight
    from training.export import set_box_prior_weight

    path = tmp_path / "box.onnx"
    shutil.copy(fp32_path, path)
    assert onnx_box_prior_weight(path) == 0.0
    set_box_prior_weight(path, 3.0)
    set_box_prior_weight(path, 2.5)
    assert onnx_box_prior_weight(path) == 2.5
    assert [p.key for p in onnx.load(str(path)).metadata_props].count(
        "picosam2.box_prior_weight"
    ) == 1
    assert OnnxBackend(path).box_prior_weight == 2.5


def test_blend_moves_every_weight_the_given_share(model, fp32_path, inputs, tmp_path) -> None:
    """The blended file is the weight-space average of two exports of the architecture:
    share 0 is the first file's network, share 1 the second's, and in between each float
    initializer is (1 - share) * first + share * second."""
    import shutil

    from onnx import numpy_helper

    from training.export import blend_initializers

    other = export_onnx(picosam2_with_statistics(1), tmp_path / "other.onnx")

    def weights(path):
        return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}

    mine, theirs = weights(fp32_path), weights(other)
    for share, expected in ((0.0, fp32_path), (1.0, other)):
        path = tmp_path / f"blend_{share}.onnx"
        shutil.copy(fp32_path, path)
        assert blend_initializers(path, other, share) > 10
        np.testing.assert_allclose(
            run_onnx(path, inputs[:4]), run_onnx(expected, inputs[:4]), rtol=1e-5, atol=1e-5
        )
    path = tmp_path / "blend_quarter.onnx"
    shutil.copy(fp32_path, path)
    blend_initializers(path, other, 0.25)
    blended = weights(path)
    moved = 0
    for name, weight in blended.items():
        if weight.dtype.kind == "f":
            np.testing.assert_allclose(
                weight, 0.75 * mine[name] + 0.25 * theirs[name], rtol=1e-6, atol=1e-7
            )
            moved += int(not np.array_equal(mine[name], theirs[name]))
    assert moved > 10
    out = run_onnx(path, inputs[:4])
    assert not np.allclose(out, run_onnx(fp32_path, inputs[:4]), atol=1e-3)


def test_blend_refuses_what_does_not_match(fp32_path, tmp_path) -> None:
    import shutil

    from training.export import blend_initializers

    path = tmp_path / "m.onnx"
    shutil.copy(fp32_path, path)
    with pytest.raises(SystemExit, match="within"):
        blend_initializers(path, fp32_path, 1.5)
    with pytest.raises(SystemExit, match="cannot read"):
        blend_initializers(path, tmp_path / "missing.onnx", 0.5)
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 96, 96])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1, 96, 96])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 1, 1], [1.0, 1.0, 1.0])
    conv = helper.make_node("Conv", ["image", "w"], ["logits"])
    graph = helper.make_graph([conv], "g", [inp], [out], [weight])
    stranger = tmp_path / "stranger.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), stranger)
    with pytest.raises(SystemExit, match="not an export of the same graph"):
        blend_initializers(path, stranger, 0.5)
