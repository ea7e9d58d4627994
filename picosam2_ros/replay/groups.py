"""Bag messages -> frame groups, in the order the replayer publishes them.

A frame group is a maximal run of consecutive messages (bag-time order) that carry the
same header stamp; messages without a header (``std_msgs/String``, tf, ...) join the
group they follow. In a COCO-derived bag (``picosam2_ros.bags.layout``) every message
of one image is logged at the image's stamp, so each image's prompts, ground truth,
camera_info and image form exactly one group, whatever their order inside one bag time.

Inside a group, images go LAST (stable otherwise): a segmenter then holds the frame's
prompts, and an evaluator its ground truth, before the image arrives.

Also what grouping needs of the messages themselves: ``header_stamp_ns`` and
``import_message_type`` (a ``pkg/msg/Name`` -> its rosidl class, to deserialise with).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from picosam2_ros.bags.layout import time_ns

#: Message types the replayer treats as the frame itself.
IMAGE_TYPES = frozenset({"sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"})
#: Message type whose ``object_id`` a result for the frame should answer.
PROMPT_TYPE = "picosam2_ros/msg/Prompt"


def parse_msgtype(msgtype: str) -> tuple[str, str]:
    """``("pkg", "Name")`` of ``pkg/msg/Name`` (also ``pkg/Name``).

    Raises ValueError for anything else.
    """
    parts = msgtype.split("/")
    if len(parts) == 3 and parts[1] == "msg" and all(parts):
        return parts[0], parts[2]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise ValueError(f"not a ROS message type name: {msgtype!r}")


@dataclass
class GroupItem:
    """One bag message ready to publish: ``message`` is the deserialised object."""

    topic: str
    msgtype: str
    bag_time_ns: int
    stamp_ns: int | None
    message: Any
    object_id: int | None = None

    @property
    def is_image(self) -> bool:
        return self.msgtype in IMAGE_TYPES


@dataclass
class FrameGroup:
    """Messages sharing one header stamp (``stamp_ns`` None: only headerless ones)."""

    stamp_ns: int | None
    items: list[GroupItem] = field(default_factory=list)
    #: 0-based position of this group in one pass over the bag.
    index: int = 0

    @property
    def first_time_ns(self) -> int:
        return min(item.bag_time_ns for item in self.items)

    @property
    def has_image(self) -> bool:
        return any(item.is_image for item in self.items)

    @property
    def prompt_ids(self) -> list[int]:
        """Object ids of the group's prompts, in order, without repeats."""
        seen: dict[int, None] = {}
        for item in self.items:
            if item.msgtype == PROMPT_TYPE and item.object_id is not None:
                seen[item.object_id] = None
        return list(seen)

    @property
    def has_prompts(self) -> bool:
        return any(item.msgtype == PROMPT_TYPE for item in self.items)

    def before_images(self) -> list[GroupItem]:
        """Everything but the images, in bag order: what goes out before the images."""
        return [i for i in self.items if not i.is_image]

    def images(self) -> list[GroupItem]:
        return [i for i in self.items if i.is_image]


def group_by_stamp(items: Iterable[GroupItem]) -> Iterator[FrameGroup]:
    """Consecutive items with the same header stamp form one group (see module doc)."""
    current: FrameGroup | None = None
    index = 0
    for item in items:
        if current is not None and (item.stamp_ns is None or item.stamp_ns == current.stamp_ns):
            current.items.append(item)
            continue
        if current is not None and current.stamp_ns is None and item.stamp_ns is not None:
            # Headerless messages so far: the first stamped message names the group.
            current.stamp_ns = item.stamp_ns
            current.items.append(item)
            continue
        if current is not None:
            yield current
            index += 1
        current = FrameGroup(item.stamp_ns, [item], index)
    if current is not None:
        yield current


def import_message_type(msgtype: str) -> type:
    """The rosidl Python class of ``pkg/msg/Name``.

    Raises ImportError (with the reason) when it cannot be imported.
    """
    try:
        package, name = parse_msgtype(msgtype)
    except ValueError as exc:
        raise ImportError(str(exc)) from None
    try:
        module = importlib.import_module(f"{package}.msg")
    except ImportError as exc:
        raise ImportError(f"package {package!r} is not importable ({exc})") from None
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        raise ImportError(f"{package}.msg has no message {name!r}")
    return cls


def header_stamp_ns(msg: Any) -> int | None:
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    return None if stamp is None else time_ns(stamp)
