"""Start camera_node: PicoSAM2 on the Raspberry Pi AI Camera (IMX500).

ros2 launch picosam2_ros camera.launch.py network:=/path/to/picosam2.rpk
ros2 launch picosam2_ros camera.launch.py network:=/path/to/picosam2.rpk emulator_source:=moving
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
            default_value=str(share / "config" / "camera.yaml"),
            description="camera_node parameters (YAML)",
        ),
        DeclareLaunchArgument(
            "network",
            description="IMX500 network package (.rpk) holding PicoSAM2",
        ),
        DeclareLaunchArgument(
            "emulator_source",
            default_value="",
            description="empty = the real camera; else run the picamera2 emulator on an image "
            "folder, a rosbag2, scene[:SEED[:N]] or moving[:SEED]",
        ),
        DeclareLaunchArgument(
            "click_topic",
            default_value="image_raw_mouse_left",
            description="topic of pixel clicks (rqt_image_view publishes <image>_mouse_left)",
        ),
    ]
    node = Node(
        package="picosam2_ros",
        executable="camera_node",
        name="camera",
        namespace=LaunchConfiguration("namespace"),
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "network": LaunchConfiguration("network"),
                "emulator_source": LaunchConfiguration("emulator_source"),
            },
        ],
        remappings=[("click", LaunchConfiguration("click_topic"))],
        output="screen",
    )
    return LaunchDescription([*args, node])
