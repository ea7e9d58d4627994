"""Fixtures for the replay tests: a tiny COCO-format set rendered with
picosam2_ros.testing.scenes, turned into real bags by picosam2_ros.bags, and the
colour-match model (the scenes' objects have flat, distinct colours, so the model's
mask is exact and every prompt gets a result)."""

from __future__ import annotations

from pathlib import Path

import pytest

from picosam2_ros.bags import coco_to_bag
from picosam2_ros.testing.models import build_colour_match_model

from ..tiny_coco import TinySet, write_tiny_coco

__all__ = ["TinySet", "write_tiny_coco"]


#: Five 224x176 frames with 1 to 4 objects (12 instances).
TINY_SIZES = [(224, 176)] * 5
TINY_COUNTS = [3, 1, 4, 2, 2]


@pytest.fixture(scope="package")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> TinySet:
    return write_tiny_coco(tmp_path_factory.mktemp("tiny_coco"), TINY_SIZES, TINY_COUNTS)


@pytest.fixture(scope="package")
def tiny_bag(tiny_set: TinySet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bags") / "tiny"
    coco_to_bag(tiny_set.annotations, tiny_set.images, out, progress=False)
    return out


@pytest.fixture(scope="package")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_colour_match_model(tmp_path_factory.mktemp("models") / "colour.onnx")
