"""The shipped default models: they load through the package's onnxruntime backend,
their checksums match MODEL_CARD.md, and on a few fixed real crops their masks overlap
the ground truth (a regression guard, not a quality claim)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.metrics import mask_iou
from training.crops import normalise
from training.data import load_coco_folders
from training.evaluate import build_eval_set

REPO = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO / "picosam2_ros" / "models"
VAL_DIR = REPO.parent / "shared" / "data" / "coco-val2017-sample"
CARD = MODELS_DIR / "MODEL_CARD.md"
POINT_FILES = ("picosam2_point.onnx", "picosam2_point_int8.onnx")
BOX_FILES = ("picosam2_box.onnx", "picosam2_box_int8.onnx")
#: The whole-object decoding's point model (trained on zoom windows).
ZOOM_FILES = ("picosam2_point_zoom.onnx", "picosam2_point_zoom_int8.onnx")
#: Box-prior weights in the files' metadata (core.box_prior), calibrated on held-out
#: training box crops: the box model's, and the point model's for box prompts decoded by
#: the point network (the camera's one network on the sensor, or a user's box_model).
BOX_PRIOR_WEIGHTS = {"point": 8.0, "box": 6.0}


def _card_checksums() -> dict[str, str]:
    text = CARD.read_text()
    return dict(re.findall(r"`(picosam2_\w+\.onnx)`\s*\|\s*`([0-9a-f]{64})`", text))


@pytest.mark.parametrize("name", POINT_FILES + BOX_FILES + ZOOM_FILES)
def test_shipped_file_loads_and_matches_card(name: str) -> None:
    path = MODELS_DIR / name
    assert path.is_file(), f"shipped model {path} is missing"
    backend = OnnxBackend(path)
    assert backend.input_size == 96 and backend.batch_dynamic
    assert backend.info["opset"] == "17"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert _card_checksums().get(path.name) == digest, f"{name}: sha256 differs from card"
    kind = "box" if name in BOX_FILES else "point"
    assert backend.box_prior_weight == BOX_PRIOR_WEIGHTS[kind]


def test_each_prompt_kind_gets_its_shipped_model_by_default() -> None:
    from picosam2_ros.resources import resolve_model_paths

    paths = resolve_model_paths("", "")
    assert paths == {
        "point": MODELS_DIR / "picosam2_point.onnx",
        "box": MODELS_DIR / "picosam2_box.onnx",
    }


@pytest.fixture(scope="module")
def real_data():
    if not VAL_DIR.is_dir():
        pytest.skip(f"real-photo fixture {VAL_DIR} is absent (not shipped with the package)")
    return load_coco_folders([VAL_DIR], min_area=32 * 32, max_images=4)


@pytest.fixture(scope="module")
def real_crops(real_data):
    return build_eval_set(real_data, "point")


@pytest.mark.parametrize("name", POINT_FILES + ZOOM_FILES)
def test_masks_overlap_ground_truth_on_real_crops(name: str, real_crops) -> None:
    logits = OnnxBackend(MODELS_DIR / name).infer(normalise(real_crops.crops))
    ious = [mask_iou(p > 0, t) for p, t in zip(logits, real_crops.masks, strict=True)]
    assert len(ious) >= 8
    assert np.mean(ious) > 0.35, ious
    assert np.mean(np.array(ious) > 0.1) >= 0.7, ious


@pytest.mark.parametrize("name", BOX_FILES)
def test_box_model_masks_overlap_ground_truth_on_real_box_crops(name: str, real_data) -> None:
    from picosam2_ros.core.box_prior import apply_box_prior

    crops = build_eval_set(real_data, "box")
    backend = OnnxBackend(MODELS_DIR / name)
    logits = apply_box_prior(
        backend.infer(normalise(crops.crops)), crops.boxes, backend.box_prior_weight
    )
    ious = [mask_iou(p > 0, t) for p, t in zip(logits, crops.masks, strict=True)]
    assert len(ious) >= 8
    assert np.mean(ious) > 0.5, ious


@pytest.mark.parametrize(
    "name", ["picosam2_point_imx500_packerOut.zip", "picosam2_point_zoom_imx500_packerOut.zip"]
)
def test_shipped_imx500_packer_file_matches_card(name: str) -> None:
    """The IMX500 converter outputs that ship (imx500-package turns each into the .rpk on
    the Pi): checksums are the card's, and the on-sensor tensors are PicoSAM2's."""
    import xml.etree.ElementTree as ET
    import zipfile

    path = MODELS_DIR / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"`{digest}`" in CARD.read_text(), "packerOut.zip sha256 differs from MODEL_CARD.md"
    with zipfile.ZipFile(path) as z:
        assert {"manifest.json", "dnnParams.xml", "l2staticData.bin"} <= set(z.namelist())
        params = ET.fromstring(z.read("dnnParams.xml"))

    def sizes(kind: str) -> list[int]:
        (tensor,) = params.iter(kind)
        return [int(d.get("size", "0")) for d in tensor.iter("dimension")]

    assert sizes("inputTensor") == [3, 96, 96]
    assert sizes("outputTensor") == [1, 96, 96]
