"""Replay a COCO-derived bag through the segmenter into the evaluator.

bag -> replay_node -> segmenter_node -> evaluator_node

ros2 launch picosam2_ros replay.launch.py bag:=/data/coco_val.bag report_dir:=/tmp/report

The replayer plays the bag's topics under their own names (/camera/image_raw, /prompts,
/ground_truth, /camera/camera_info, /dataset/info); the segmenter reads the image topic
and /prompts and answers on /segmentation (lock-step: each result releases the next
frame); the evaluator matches /segmentation to /ground_truth by (stamp, object id),
writes its report to report_dir and ends the launch when it exits.

All three run with the shared-memory Fast DDS profile (config/fastdds_shm.xml): with the
default transport, VGA images between processes stalled lock-step replays here (frames
timed out after 5 s) and results arrived twice.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    RegisterEventHandler,
    SetEnvironmentVariable,
    Shutdown,
)
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription


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
                # Start once the segmenter reads images and the evaluator ground truth.
                "require_subscribers": [LaunchConfiguration("image_topic"), "/ground_truth"],
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
    end_with_evaluator = RegisterEventHandler(
        OnProcessExit(
            target_action=evaluator,
            on_exit=[Shutdown(reason="evaluator finished")],
        )
    )
    dds = SetEnvironmentVariable(
        "FASTRTPS_DEFAULT_PROFILES_FILE", LaunchConfiguration("dds_profile")
    )
    return LaunchDescription([*args, dds, segmenter, evaluator, replay, end_with_evaluator])
