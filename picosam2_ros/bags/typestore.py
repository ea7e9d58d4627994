"""A rosbags typestore that knows ROS 2 Jazzy's messages and this package's own.

The package's types are parsed from the ``msg/*.msg`` text, so writing and reading bags
needs neither rclpy nor a build of the messages. The ``msg/`` folder is looked up, in
this order, in the source tree (``<repo>/msg``), in the installed share folder found
through the ament index (``share/picosam2_ros/msg`` under ``AMENT_PREFIX_PATH``), and in
``<sys.prefix>/share/picosam2_ros/msg`` (the development environment installs the
interfaces into the virtualenv).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

PACKAGE = "picosam2_ros"

#: The package's message names in dependency order (ObjectMask uses Prompt, and so on).
PACKAGE_MESSAGES = ("Prompt", "ObjectMask", "Segmentation")

PROMPT = f"{PACKAGE}/msg/Prompt"
OBJECT_MASK = f"{PACKAGE}/msg/ObjectMask"
SEGMENTATION = f"{PACKAGE}/msg/Segmentation"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
REGION_OF_INTEREST = "sensor_msgs/msg/RegionOfInterest"
STRING = "std_msgs/msg/String"
HEADER = "std_msgs/msg/Header"
TIME = "builtin_interfaces/msg/Time"
POINT = "geometry_msgs/msg/Point"

#: Constants of the package's messages (``Prompt.LABEL_FOREGROUND``,
#: ``ObjectMask.STATUS_OK``), for code that builds messages without rclpy.
LABEL_BACKGROUND = 0
LABEL_FOREGROUND = 1
STATUS_OK = 0


class MessageDefinitionsNotFoundError(FileNotFoundError):
    """The package's ``msg/`` folder is in none of the places searched."""


def _has_definitions(folder: Path) -> bool:
    return all((folder / f"{name}.msg").is_file() for name in PACKAGE_MESSAGES)


def _ament_share_msg_dir() -> Path | None:
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE)) / "msg"
    except (PackageNotFoundError, LookupError, OSError, ValueError):
        return None


def candidate_msg_dirs() -> list[Path]:
    """Where the ``msg/`` folder is looked for, in order of preference."""
    candidates = [Path(__file__).resolve().parents[2] / "msg"]
    share = _ament_share_msg_dir()
    if share is not None:
        candidates.append(share)
    candidates.append(Path(sys.prefix) / "share" / PACKAGE / "msg")
    return candidates


def find_msg_dir(extra: Iterable[Path] = ()) -> Path:
    """The first folder holding all of the package's ``.msg`` files.

    Raises:
        MessageDefinitionsNotFoundError: listing every folder tried.
    """
    tried = [*extra, *candidate_msg_dirs()]
    for folder in tried:
        if _has_definitions(folder):
            return folder
    names = ", ".join(f"{name}.msg" for name in PACKAGE_MESSAGES)
    where = "\n  ".join(str(p) for p in tried)
    raise MessageDefinitionsNotFoundError(
        f"cannot find the {PACKAGE} message definitions ({names}); looked in:\n  {where}\n"
        "Run from the source tree, or source the workspace that installed the package "
        "(AMENT_PREFIX_PATH)."
    )


def package_types(msg_dir: Path) -> dict[str, Any]:
    """The package's message types parsed from ``msg_dir``, as rosbags parse trees."""
    types: dict[str, Any] = {}
    for name in PACKAGE_MESSAGES:
        text = (msg_dir / f"{name}.msg").read_text(encoding="utf-8")
        types.update(get_types_from_msg(text, f"{PACKAGE}/msg/{name}"))
    return types


def make_typestore(msg_dir: Path | None = None) -> Typestore:
    """A fresh typestore: ROS 2 Jazzy plus this package's messages."""
    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(package_types(msg_dir if msg_dir is not None else find_msg_dir()))
    return store


@cache
def default_typestore() -> Typestore:
    """The shared typestore (built once per process); treat it as read-only."""
    return make_typestore()


def type_closure(store: Typestore, msgtypes: Iterable[str]) -> dict[str, Any]:
    """The definitions of ``msgtypes`` and of every type they contain, from ``store``.

    Raises:
        KeyError: a type (or one it contains) is not in ``store``.
    """
    result: dict[str, Any] = {}
    pending = list(msgtypes)
    while pending:
        name = pending.pop()
        if name in result:
            continue
        consts, fields = store.fielddefs[name]
        result[name] = (consts, fields)
        for _, desc in fields:
            pending.extend(_nested_names(desc))
    return result


def _nested_names(desc: Any) -> list[str]:
    """Names of message types referenced by a rosbags field description."""
    kind, rest = desc
    kind_name = getattr(kind, "name", str(kind))
    if kind_name == "NAME":
        return [str(rest)]
    if kind_name in {"ARRAY", "SEQUENCE"}:
        return _nested_names(rest[0])
    return []
