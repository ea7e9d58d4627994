"""Export a trained PicoSAM2 to ONNX (opset 17, dynamic batch) and int8 (onnxruntime
static quantisation, QDQ format, calibrated on training crops, laid out for onnxruntime's
CPU kernels: see ``quantize_int8``), with checks.

    python -m training.export --checkpoint RUN/final.pt --out DIR --name picosam2_point \\
        --calib-data TRAIN_DIR [TRAIN_DIR ...] --protocol point

Writes DIR/NAME.onnx, DIR/NAME_int8.onnx and DIR/NAME_export.json. The contract is the
one the onnxruntime backend checks: input "image" [N, 3, 96, 96] float32
(ImageNet-normalised RGB), output "logits" [N, 1, 96, 96], opset 17.

``--blend OTHER SHARE`` moves the fp32 file's weights SHARE of the way to another fp32
export of the same architecture (``blend_initializers``: a weight-space average, the
batch norms already folded into the convolutions) before int8 is calibrated on it.

Checks (each failure is a SystemExit naming the problem):
- fp32: max |onnxruntime - PyTorch| over real crops below ``FP32_TOLERANCE``
- int8: mean IoU between int8 and fp32 masks on training crops not used for
  calibration at least ``INT8_MIN_MASK_IOU``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import torch

from picosam2_ros.core.box_prior import BOX_PRIOR_WEIGHT_KEY
from training.augment import NO_AUGMENT, make_batch
from training.crops import check_protocol, normalise
from training.data import load_coco_folders
from training.model import INPUT_SIZE, PicoSAM2, load_weights

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
FP32_TOLERANCE = 1e-3
INT8_MIN_MASK_IOU = 0.85


def check_onnx(path: str | Path, opset: int = OPSET) -> onnx.ModelProto:
    """Load ``path`` and verify the PicoSAM2 contract and the opset."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        raise SystemExit(f"{path} is not a valid ONNX model: {exc}") from exc
    found = [e.version for e in model.opset_import if e.domain in ("", "ai.onnx")]
    if found != [opset]:
        raise SystemExit(f"{path} has opset {found[0] if found else 'none'}, expected {opset}")
    inp, out = model.graph.input[0], model.graph.output[0]
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1:] != [3, INPUT_SIZE, INPUT_SIZE] or not isinstance(dims[0], str):
        raise SystemExit(f"{path}: input must be [N,3,96,96] with a dynamic N, is {dims}")
    odims = [d.dim_value or d.dim_param for d in out.type.tensor_type.shape.dim]
    if len(odims) != 4 or odims[1:] != [1, INPUT_SIZE, INPUT_SIZE]:
        raise SystemExit(f"{path}: output must be [N,1,96,96], is {odims}")
    return model


def export_onnx(model: PicoSAM2, path: str | Path, opset: int = OPSET) -> Path:
    """Write ``model`` as ONNX with a dynamic batch dimension."""
    if opset != OPSET:
        raise SystemExit(f"unsupported opset {opset}: the PicoSAM2 contract is opset {OPSET}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.to(memory_format=torch.contiguous_format).float().eval()
    dummy = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        dynamo=False,
        do_constant_folding=True,
    )
    check_onnx(path, opset)
    return path


def _session(path: Path, threads: int = 2):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_onnx(path: Path, x: np.ndarray, threads: int = 2, batch: int = 64) -> np.ndarray:
    sess = _session(path, threads)
    return np.concatenate(
        [sess.run(None, {INPUT_NAME: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    )


def fp32_parity(model: PicoSAM2, path: Path, x: np.ndarray) -> float:
    """Max |ONNX - PyTorch| over ``x``; SystemExit above FP32_TOLERANCE."""
    model = model.to(memory_format=torch.contiguous_format).float().eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = run_onnx(path, x)
    diff = float(np.abs(ref - got).max())
    if not diff <= FP32_TOLERANCE:
        raise SystemExit(f"ONNX export parity failed: max |ONNX - PyTorch| = {diff:.3g}")
    return diff


def mask_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean IoU between the masks (logit > 0) of two logit arrays (1.0 for both empty)."""
    pa, pb = a > 0, b > 0
    inter = (pa & pb).reshape(len(a), -1).sum(1)
    union = (pa | pb).reshape(len(a), -1).sum(1)
    return float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean())


def _input_convs(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv nodes that read the graph input (the 3-channel first layer)."""
    inputs = {i.name for i in model.graph.input}
    return [n.name for n in model.graph.node if n.op_type == "Conv" and n.input[0] in inputs]


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def upsample_as_copies(path: Path) -> int:
    """Rewrite, in place, each quantised nearest-neighbour Resize of a QDQ model
    (DequantizeLinear -> Resize -> QuantizeLinear with one scale and zero point, integer
    scales on H and W) as uint8 copies in NHWC order: Transpose, Reshape, Expand,
    Reshape, Transpose. The result is bit-identical. onnxruntime runs the int8 convs in
    NHWC and cancels the two transposes against its own, while its NHWC uint8 Resize is
    a slow generic loop (1.6 of 7.7 ms per crop for PicoSAM2). Returns the number of
    Resize nodes rewritten."""
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    shapes = {
        vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in onnx.shape_inference.infer_shapes(model).graph.value_info
    }
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    replace: dict[int, list[onnx.NodeProto]] = {}
    drop: set[int] = set()
    new_inits = []
    for node in graph.node:
        if node.op_type != "Resize" or len(node.input) < 3:
            continue
        dq = producer.get(node.input[0])
        users = consumers.get(node.output[0], [])
        scales = inits.get(node.input[2])
        shape = shapes.get(node.input[0], [])
        if (
            dq is None
            or dq.op_type != "DequantizeLinear"
            or len(consumers.get(dq.output[0], [])) != 1
            or len(users) != 1
            or users[0].op_type != "QuantizeLinear"
            or list(users[0].input[1:]) != list(dq.input[1:])
            or _attr(node, "mode", b"nearest") != b"nearest"
            or _attr(node, "coordinate_transformation_mode", b"") != b"asymmetric"
            or _attr(node, "nearest_mode", b"") != b"floor"
            or scales is None
            or len(scales) != 4
            or list(scales[:2]) != [1.0, 1.0]
            or any(s < 1 or s != int(s) for s in scales[2:])
            or len(shape) != 4
            or not all(shape[1:])
        ):
            continue
        quant = users[0]
        (_, c, h, w), (sh, sw) = shape, (int(scales[2]), int(scales[3]))
        stem = node.name or node.output[0]

        def const(suffix: str, values: list[int], stem: str = stem) -> str:
            new_inits.append(numpy_helper.from_array(np.array(values, np.int64), stem + suffix))
            return stem + suffix

        replace[id(quant)] = [
            onnx.helper.make_node("Transpose", [dq.input[0]], [stem + "_nhwc"], perm=[0, 2, 3, 1]),
            onnx.helper.make_node(
                "Reshape", [stem + "_nhwc", const("_split", [0, h, 1, w, 1, c])], [stem + "_6d"]
            ),
            onnx.helper.make_node(
                "Expand", [stem + "_6d", const("_repeat", [1, 1, sh, 1, sw, 1])], [stem + "_rep"]
            ),
            onnx.helper.make_node(
                "Reshape",
                [stem + "_rep", const("_merge", [0, sh * h, sw * w, c])],
                [stem + "_up"],
            ),
            onnx.helper.make_node(
                "Transpose", [stem + "_up"], [quant.output[0]], perm=[0, 3, 1, 2]
            ),
        ]
        drop |= {id(dq), id(node)}
    if not replace:
        return 0
    nodes = []
    for n in graph.node:
        if id(n) in replace:
            nodes += replace[id(n)]
        elif id(n) not in drop:
            nodes.append(n)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(new_inits)
    used = {i for n in graph.node for i in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.save(model, str(path))
    return len(replace)


def quantize_int8(fp32_path: Path, out_path: Path, calib: np.ndarray) -> Path:
    """Static int8 QDQ quantisation (per-channel int8 weights, uint8 activations)
    calibrated on ``calib`` (N, 3, 96, 96) normalised crops.

    Tuned for onnxruntime on AVX2 CPUs (bench/bench_int8_profile.py): the first conv
    (3-channel depthwise, where int8 is 4x slower than fp32) stays in float, and the
    nearest upsamples become uint8 copies (``upsample_as_copies``)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(range(0, len(calib), 16))

        def get_next(self):
            i = next(self._it, None)
            return None if i is None else {INPUT_NAME: calib[i : i + 16]}

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=_input_convs(onnx.load(str(pre))),
        )
    upsample_as_copies(out_path)
    check_onnx(out_path)
    return out_path


def blend_initializers(path: Path, other: Path, share: float) -> int:
    """Rewrite the fp32 ONNX file ``path`` with every float initializer moved ``share``
    of the way to ``other``'s of the same name: ``(1 - share) * mine + share * theirs``.
    Both must be exports of this architecture (same initializer names and shapes; the
    exporter folds each batch norm into its convolution, so an average of folded
    weights is one network of the same graph). Returns the number of tensors blended;
    a SystemExit names a file that does not match."""
    from onnx import numpy_helper

    if not 0.0 <= share <= 1.0:
        raise SystemExit(f"--blend share must be within [0, 1], got {share}")
    try:
        theirs = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(other)).graph.initializer}
    except Exception as exc:
        raise SystemExit(f"cannot read ONNX model {other} to blend with: {exc}") from exc
    model = onnx.load(str(path))
    mine = model.graph.initializer
    if sorted(t.name for t in mine) != sorted(theirs):
        raise SystemExit(f"{other} is not an export of the same graph as {path}")
    blended = 0
    for tensor in mine:
        weight, partner = numpy_helper.to_array(tensor), theirs[tensor.name]
        if weight.shape != partner.shape:
            raise SystemExit(f"{other}: {tensor.name} is {partner.shape}, not {weight.shape}")
        if weight.dtype.kind != "f":
            continue
        mixed = (1.0 - share) * weight.astype(np.float64) + share * partner.astype(np.float64)
        tensor.CopyFrom(numpy_helper.from_array(mixed.astype(weight.dtype), tensor.name))
        blended += 1
    onnx.save(model, str(path))
    check_onnx(path)
    return blended


def set_box_prior_weight(path: Path, weight: float) -> None:
    """Store the weight for decoding box crops in the ONNX metadata (BOX_PRIOR_WEIGHT_KEY)."""
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != BOX_PRIOR_WEIGHT_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = BOX_PRIOR_WEIGHT_KEY, f"{weight:g}"
    onnx.save(model, str(path))


def training_crops(
    folders: list[str], protocol: str, n: int, seed: int, zoom: float = 0.0
) -> np.ndarray:
    """``n`` un-augmented training crops; with ``zoom`` > 0 that share are zoom windows
    (as the model trained with ``--zoom`` sees them), so int8 calibration covers them."""
    data = load_coco_folders(folders)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(data), size=min(n, len(data)), replace=False)
    cfg = replace(NO_AUGMENT, zoom=zoom) if zoom > 0 else NO_AUGMENT
    crops = make_batch(data, idx, protocol, rng, cfg).crops
    return normalise(crops)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.export",
        description="Export a PicoSAM2 checkpoint to ONNX fp32 and int8 with parity checks.",
    )
    ap.add_argument("--checkpoint", required=True, help="final.pt or last.pt of a run")
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--name", default="picosam2", help="file name stem")
    ap.add_argument("--calib-data", nargs="+", required=True, help="TRAINING folder(s)")
    ap.add_argument("--protocol", default="point", help="crop protocol for calibration crops")
    ap.add_argument("--calib-samples", type=int, default=256)
    ap.add_argument("--check-samples", type=int, default=128)
    ap.add_argument("--opset", type=int, default=OPSET)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-int8", action="store_true")
    ap.add_argument(
        "--zoom",
        type=float,
        default=0.0,
        help="share of calibration and check crops cut as zoom windows (the training "
        "run's --zoom), so int8 calibration sees what the model is used on",
    )
    ap.add_argument(
        "--box-prior-weight",
        type=float,
        default=0.0,
        help="weight of box-conditioned decoding of box crops (picosam2_ros.core.box_prior), "
        "stored in the ONNX metadata; 0 = none",
    )
    ap.add_argument(
        "--blend",
        nargs=2,
        metavar=("OTHER", "SHARE"),
        help="move the exported fp32 weights SHARE (0-1) of the way to those of OTHER, "
        "another fp32 export of this architecture, before int8 is made from them",
    )
    args = ap.parse_args(argv)
    check_protocol(args.protocol)
    blend = None
    if args.blend is not None:
        try:
            blend = (Path(args.blend[0]), float(args.blend[1]))
        except ValueError:
            raise SystemExit(f"--blend SHARE must be a number, got {args.blend[1]!r}") from None
    if args.opset != OPSET:
        raise SystemExit(f"unsupported opset {args.opset}: the PicoSAM2 contract is opset {OPSET}")
    model = load_weights(args.checkpoint)
    torch.set_num_threads(2)
    crops = training_crops(
        args.calib_data, args.protocol, args.calib_samples + args.check_samples, args.seed,
        args.zoom,
    )  # fmt: skip
    calib, check = crops[: args.calib_samples], crops[args.calib_samples :]
    if len(check) == 0:
        check = calib
    args.out.mkdir(parents=True, exist_ok=True)
    fp32 = export_onnx(model, args.out / f"{args.name}.onnx", args.opset)
    report: dict = {
        "fp32": {"file": fp32.name, "max_abs_diff_vs_torch": fp32_parity(model, fp32, check)}
    }
    print(f"fp32 {fp32}: max |ONNX - PyTorch| = {report['fp32']['max_abs_diff_vs_torch']:.2e}")
    if blend is not None:
        count = blend_initializers(fp32, *blend)
        digest = hashlib.sha256(blend[0].read_bytes()).hexdigest()
        # The parity above is the checkpoint's; from here on the file is the blend.
        report["fp32"]["blend"] = {"with": str(blend[0]), "sha256": digest, "share": blend[1]}
        print(f"fp32 {fp32}: {count} weight tensors moved {blend[1]:g} of the way to {blend[0]}")
    if not args.no_int8:
        int8 = quantize_int8(fp32, args.out / f"{args.name}_int8.onnx", calib)
        agree = mask_agreement(run_onnx(fp32, check), run_onnx(int8, check))
        report["int8"] = {
            "file": int8.name,
            "calibration_crops": len(calib),
            "mask_iou_vs_fp32": agree,
        }
        print(f"int8 {int8}: mean mask IoU vs fp32 on {len(check)} held-back crops = {agree:.4f}")
        if agree < INT8_MIN_MASK_IOU:
            raise SystemExit(
                f"int8 model disagrees with fp32: mean mask IoU {agree:.3f} < {INT8_MIN_MASK_IOU}"
            )
    if args.box_prior_weight < 0.0:
        raise SystemExit("--box-prior-weight must be >= 0")
    if args.box_prior_weight > 0.0:
        for entry in report.values():
            set_box_prior_weight(args.out / entry["file"], args.box_prior_weight)
        report["box_prior_weight"] = args.box_prior_weight
    (args.out / f"{args.name}_export.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
