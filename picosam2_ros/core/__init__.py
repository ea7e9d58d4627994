"""Pure numpy core: prompts, crops, pre/post-processing, paste-back, tracking, metrics.

Nothing here imports rclpy or ROS messages, so it is testable (and usable) without ROS.
"""
