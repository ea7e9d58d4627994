"""rosbag2 bags for replay and evaluation: COCO-format data -> bag -> numpy.

- ``layout``: the bag layout (topics, stamps, ``/dataset/info``): the contract between
  ``picosam2-make-bag``, the replay node and the evaluator.
- ``typestore``: rosbags types of ROS 2 Jazzy plus this package's ``msg/*.msg``.
- ``coco``: COCO-format annotations (pycocotools) -> instances and prompts.
- ``writer``: ``DatasetBagWriter``; ``convert``: ``coco_to_bag`` (the tool's library side).
- ``reader``: ``BagReader`` (any rosbag2) and ``DatasetBag`` (this layout, as numpy).

Nothing here imports rclpy. ``convert`` (pycocotools, tqdm) is imported on first use of
its names, so that the nodes, which only read bags, do not need the conversion tools.
"""

from __future__ import annotations

import importlib
from typing import Any

from picosam2_ros.bags.layout import Instance, PromptSpec, frame_stamp_ns
from picosam2_ros.bags.reader import (
    BagError,
    BagMessage,
    BagOpenError,
    BagReader,
    DatasetBag,
    DatasetFrame,
    DatasetInfo,
    DatasetLayoutError,
    EmptyBagError,
    GroundTruthObject,
    MissingTopicError,
    TopicTypeError,
    UnknownTypeError,
    read_dataset,
)
from picosam2_ros.bags.writer import BagWriteError, DatasetBagWriter, Storage

__all__ = [
    "BagError",
    "BagMessage",
    "BagOpenError",
    "BagReader",
    "BagWriteError",
    "ConversionReport",
    "DatasetBag",
    "DatasetBagWriter",
    "DatasetFrame",
    "DatasetInfo",
    "DatasetLayoutError",
    "EmptyBagError",
    "GroundTruthObject",
    "Instance",
    "MissingTopicError",
    "NothingToWriteError",
    "PromptSpec",
    "Storage",
    "TopicTypeError",
    "UnknownTypeError",
    "coco_to_bag",
    "frame_stamp_ns",
    "read_dataset",
]

_FROM_CONVERT = ("ConversionReport", "NothingToWriteError", "coco_to_bag")


def __getattr__(name: str) -> Any:
    if name in _FROM_CONVERT:
        return getattr(importlib.import_module("picosam2_ros.bags.convert"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
