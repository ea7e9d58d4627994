"""Fixtures for the evaluation tests: a tiny COCO-format set rendered with
picosam2_ros.testing.scenes (flat, distinctly coloured shapes), turned into a real bag
by picosam2_ros.bags.coco_to_bag, and the colour-match model, whose masks on those
scenes are exact (IoU 1 expected)."""

from __future__ import annotations

from pathlib import Path

import pytest

from picosam2_ros.bags import coco_to_bag
from picosam2_ros.testing.models import build_colour_match_model

from ..tiny_coco import TinySet, write_tiny_coco

__all__ = ["TinySet"]

#: Four 224x176 frames, 9 instances.
TINY_SIZES = [(224, 176)] * 4
TINY_COUNTS = [3, 1, 3, 2]


@pytest.fixture(scope="package")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> TinySet:
    return write_tiny_coco(tmp_path_factory.mktemp("eval_coco"), TINY_SIZES, TINY_COUNTS, seed=20)


@pytest.fixture(scope="package")
def tiny_bag(tiny_set: TinySet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval_bags") / "tiny"
    coco_to_bag(tiny_set.annotations, tiny_set.images, out, progress=False)
    return out


@pytest.fixture(scope="package")
def box_bag(tiny_set: TinySet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval_bags") / "box"
    coco_to_bag(tiny_set.annotations, tiny_set.images, out, prompt="box", progress=False)
    return out


@pytest.fixture(scope="package")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_colour_match_model(tmp_path_factory.mktemp("eval_models") / "colour.onnx")
