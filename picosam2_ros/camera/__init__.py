"""The IMX500 camera path: where prompts become sensor ROIs and sensor outputs become masks.

Pure numpy modules (no rclpy, no picamera2): ``sensor`` (main stream <-> full-sensor
pixels, prompt -> inference ROI), ``scheduler`` (prompts taking turns on the one ROI and
the settle rule that attributes frames to prompts), ``output`` (CnnOutputTensor ->
logits -> mask pasted into the main stream), ``calibration`` (camera_info from a
calibration file). ``emulator`` stands in for picamera2 and the sensor when there is no
camera.
"""
