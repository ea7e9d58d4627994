"""Start segmenter_node: PicoSAM2 through onnxruntime on an image topic.

ros2 launch picosam2_ros segmenter.launch.py image:=/camera/image_raw
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("picosam2_ros"))
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument(
            "params_file",
            default_value=str(share / "config" / "segmenter.yaml"),
            description="segmenter parameters (YAML)",
        ),
        DeclareLaunchArgument("image", default_value="image", description="image topic to segment"),
        DeclareLaunchArgument(
            "point_model", default_value="", description="point model; empty = shipped default"
        ),
        DeclareLaunchArgument(
            "box_model", default_value="", description="box model; empty = shipped default"
        ),
        DeclareLaunchArgument(
            "image_qos", default_value="sensor_data", description="sensor_data | reliable"
        ),
    ]
    node = Node(
        package="picosam2_ros",
        executable="segmenter_node",
        name="segmenter",
        namespace=LaunchConfiguration("namespace"),
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "point_model": LaunchConfiguration("point_model"),
                "box_model": LaunchConfiguration("box_model"),
                "image_qos": LaunchConfiguration("image_qos"),
            },
        ],
        remappings=[("image", LaunchConfiguration("image"))],
        output="screen",
    )
    return LaunchDescription([*args, node])
