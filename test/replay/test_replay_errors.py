"""Bad input: the replayer says what is wrong in one line and exits with code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from picosam2_ros.bags import BagOpenError, EmptyBagError, MissingTopicError, UnknownTypeError
from picosam2_ros.nodes.replay_node import ReplayConfigError, ReplayNode

REPO = Path(__file__).resolve().parents[2]


def write_empty_bag(path: Path) -> Path:
    store = get_typestore(Stores.ROS2_JAZZY)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
    return path


def write_foreign_type_bag(path: Path) -> Path:
    """One message of a type the bag defines but nothing here can import."""
    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(get_types_from_msg("int32 x", "acme_msgs/msg/Gadget"))
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/gadget", "acme_msgs/msg/Gadget", typestore=store)
        msg = store.types["acme_msgs/msg/Gadget"](x=3)
        writer.write(conn, 1, store.serialize_cdr(msg, "acme_msgs/msg/Gadget"))
    return path


def run_main(*ros_args: str) -> subprocess.CompletedProcess[str]:
    code = "from picosam2_ros.nodes.replay_node import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, "--ros-args", *ros_args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=dict(os.environ),
    )


@pytest.mark.parametrize("case", ["no bag parameter", "empty bag", "missing topic"])
def test_main_exits_2_with_one_clear_line(case: str, tmp_path: Path, tiny_bag: Path) -> None:
    if case == "no bag parameter":
        args: tuple[str, ...] = ()
        expected = "parameter 'bag' is required"
    elif case == "empty bag":
        args = ("-p", f"bag:={write_empty_bag(tmp_path / 'empty')}")
        expected = "reads empty"
    else:
        args = ("-p", f"bag:={tiny_bag}", "-p", "topics:=[/prompts, /nope]")
        expected = "missing topic(s) /nope"
    result = run_main(*args)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("replay_node: error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr


@pytest.fixture
def context() -> Iterator[Context]:
    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)


def make(context: Context, **params: object) -> ReplayNode:
    return ReplayNode(
        context=context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
    )


def test_unreadable_paths_and_unknown_types_raise_the_readers_errors(
    context: Context, tmp_path: Path, tiny_bag: Path
) -> None:
    with pytest.raises(BagOpenError, match="no such bag"):
        make(context, bag=str(tmp_path / "nowhere"))
    (tmp_path / "notes.txt").write_text("not a bag")
    with pytest.raises(BagOpenError, match="not a rosbag2"):
        make(context, bag=str(tmp_path / "notes.txt"))
    with pytest.raises(EmptyBagError, match="reads empty"):
        make(context, bag=str(write_empty_bag(tmp_path / "empty")))
    with pytest.raises(MissingTopicError) as missing:
        make(context, bag=str(tiny_bag), topics=["/camera/depth"])
    assert missing.value.missing == ["/camera/depth"] and "/prompts" in str(missing.value)
    with pytest.raises(UnknownTypeError, match=r"acme_msgs/msg/Gadget \(topic /gadget\)"):
        make(context, bag=str(write_foreign_type_bag(tmp_path / "foreign")))


def test_bad_parameters_are_named(context: Context, tiny_bag: Path) -> None:
    with pytest.raises(ValueError, match="mode must be one of timed, lockstep"):
        make(context, bag=str(tiny_bag), mode="fast")
    with pytest.raises(ReplayConfigError, match="require_subscribers"):
        make(context, bag=str(tiny_bag), require_subscribers=["/elsewhere"])
    with pytest.raises(ReplayConfigError, match="lockstep_type"):
        make(context, bag=str(tiny_bag), mode="lockstep", lockstep_type="acme_msgs/msg/X")


def test_main_plays_a_bag_and_exits_0(tiny_bag: Path) -> None:
    result = run_main("-p", f"bag:={tiny_bag}", "-p", "rate:=50.0", "-p", "start_delay_s:=0.1")
    assert result.returncode == 0, result.stderr
    assert "replay done: timed: 5/5 frames" in result.stderr + result.stdout
