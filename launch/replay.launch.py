"""Replay a COCO-derived bag through the segmenter into the evaluator.

bag -> replay_node -> segmenter_node -> evaluator_node

ros2 launch picosam2_ros replay.launch.py bag:=/data/coco_val.bag report_dir:=/tmp/report

The replayer plays the bag's topics under their own names (/camera/image_raw, /prompts,
/ground_truth, /camera/camera_info, /dataset/info); the segmenter reads the image topic
and /prompts and answers on /segmentation (lock-step: each result releases the next
frame); the evaluator matches /segmentation to /ground_truth by (stamp, object id),
writes its report to report_dir and ends the launch when it exits. If any of the three
dies, the launch ends at once with a non-zero code (instead of the others waiting).

All three run with the shared-memory Fast DDS profile (config/fastdds_shm.xml): with the
default transport, VGA images between processes stalled lock-step replays here (frames
timed out after 5 s) and results arrived twice.
"""

from pathlib import Path
from typing import Any

from ament_index_python.packages import get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    RegisterEventHandler,
    SetEnvironmentVariable,
    Shutdown,
)
from launch.event_handlers import OnProcessExit
from launch.events.process import ProcessExited
from launch.launch_context import LaunchContext
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription


def end_launch_when_exited(node: Node, *, finishes_replay: bool) -> RegisterEventHandler:
    """A node that fails ends the launch with a non-zero code, naming it; the evaluator
    exiting 0 (report written) ends it normally."""

    def on_exit(event: ProcessExited, _context: LaunchContext) -> list[Any] | None:
        if event.returncode != 0:
            # An exception in a launch event handler is how `ros2 launch` ends with 1.
            raise RuntimeError(
                f"{event.action.name} exited with code {event.returncode} (its error is "
                "above): the replay cannot complete"
            )
        return [Shutdown(reason="evaluator finished")] if finishes_replay else None

    return RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_exit))


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("picosam2_ros"))
    args = [
        DeclareLaunchArgument(
            "bag",
            description="rosbag2 to replay (folder, .mcap or .db3), e.g. from picosam2-make-bag",
        ),
        DeclareLaunchArgument(
            "point_model", default_value="", description="point model; empty = shipped default"
        ),
        DeclareLaunchArgument(
            "box_model", default_value="", description="box model; empty = shipped default"
        ),
        DeclareLaunchArgument(
            "mode",
            default_value="lockstep",
            description="lockstep (next frame when the result arrived) | timed (bag clock)",
        ),
        DeclareLaunchArgument(
            "rate", default_value="1.0", description="timed mode: playback speed factor"
        ),
        DeclareLaunchArgument(
            "report_dir",
            default_value="replay_report",
            description="folder for the evaluator's JSON report and plots",
        ),
        DeclareLaunchArgument(
            "expected_frames",
            default_value="0",
            description="frames the evaluator waits for before writing its report "
            "(0 = the evaluator's default)",
        ),
        DeclareLaunchArgument(
            "image_topic",
            default_value="/camera/image_raw",
            description="the bag's image topic (sensor_msgs/Image) the segmenter reads",
        ),
        DeclareLaunchArgument(
            "require_subscribers",
            default_value=["['", LaunchConfiguration("image_topic"), "', '/ground_truth']"],
            description="topics (a YAML list) that need a subscriber before the first frame, "
            "e.g. \"['/camera/image_raw', '/ground_truth']\"",
        ),
        DeclareLaunchArgument(
            "replay_params_file",
            default_value=str(share / "config" / "replay.yaml"),
            description="replay_node parameters (YAML)",
        ),
        DeclareLaunchArgument(
            "dds_profile",
            default_value=str(share / "config" / "fastdds_shm.xml"),
            description="Fast DDS profile for all three nodes (FASTRTPS_DEFAULT_PROFILES_FILE); "
            "the shared-memory one carries VGA images between processes without stalls",
        ),
        DeclareLaunchArgument(
            "segmenter_params_file",
            default_value=str(share / "config" / "segmenter.yaml"),
            description="segmenter_node parameters (YAML)",
        ),
    ]
    replay = Node(
        package="picosam2_ros",
        executable="replay_node",
        name="replay",
        parameters=[
            LaunchConfiguration("replay_params_file"),
            {
                "bag": LaunchConfiguration("bag"),
                "mode": LaunchConfiguration("mode"),
                "rate": ParameterValue(LaunchConfiguration("rate"), value_type=float),
                # By default: start once the segmenter reads images and the evaluator
                # ground truth. A list of substitutions would be joined into one string.
                "require_subscribers": ParameterValue(
                    LaunchConfiguration("require_subscribers"), value_type=list[str]
                ),
            },
        ],
        remappings=[
            ("segmentation", "/segmentation"),
            ("clear_prompts", "/clear_prompts"),
            ("remove_object", "/remove_object"),
        ],
        output="screen",
    )
    segmenter = Node(
        package="picosam2_ros",
        executable="segmenter_node",
        name="segmenter",
        parameters=[
            LaunchConfiguration("segmenter_params_file"),
            {
                "point_model": LaunchConfiguration("point_model"),
                "box_model": LaunchConfiguration("box_model"),
                # A replayer must not lose frames; a COCO image has up to ~100 instances.
                "image_qos": "reliable",
                "max_objects": 255,
            },
        ],
        remappings=[
            ("image", LaunchConfiguration("image_topic")),
            ("prompts", "/prompts"),
            ("segmentation", "/segmentation"),
            ("clear_prompts", "/clear_prompts"),
            ("remove_object", "/remove_object"),
        ],
        output="screen",
    )
    evaluator = Node(
        package="picosam2_ros",
        executable="evaluator_node",
        name="evaluator",
        parameters=[
            {
                "report_dir": LaunchConfiguration("report_dir"),
                "expected_frames": ParameterValue(
                    LaunchConfiguration("expected_frames"), value_type=int
                ),
            }
        ],
        remappings=[
            ("ground_truth", "/ground_truth"),
            ("segmentation", "/segmentation"),
        ],
        output="screen",
    )
    dds = SetEnvironmentVariable(
        "FASTRTPS_DEFAULT_PROFILES_FILE", LaunchConfiguration("dds_profile")
    )
    nodes = [segmenter, evaluator, replay]
    ends = [end_launch_when_exited(n, finishes_replay=n is evaluator) for n in nodes]
    return LaunchDescription([*args, dds, *nodes, *ends])
