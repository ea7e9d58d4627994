"""replay_node's parameters (declared by the node; also read by the package's tests)."""

from __future__ import annotations

from rclpy.parameter import Parameter

from picosam2_ros.nodes.params import DIAGNOSTICS_PERIOD, ParamSpec

MODES = ("timed", "lockstep")

PARAMS = (
    ParamSpec(
        "bag",
        "",
        "rosbag2 to play (required): a bag folder, its metadata.yaml, a .mcap or a .db3 file",
        read_only=True,
    ),
    ParamSpec(
        "mode",
        "timed",
        "timed: at bag time / rate; lockstep: the next frame when the result for this one "
        "arrived (or lockstep_timeout_s passed)",
        choices=MODES,
        read_only=True,
    ),
    ParamSpec(
        "rate",
        1.0,
        "timed: playback speed factor (2.0 = twice as fast as recorded)",
        float_range=(0.001, 1000.0),
        read_only=True,
    ),
    ParamSpec("loop", False, "timed: start again at the end of the bag", read_only=True),
    ParamSpec("publish_clock", False, "timed: publish /clock from the bag time", read_only=True),
    ParamSpec(
        "lockstep_topic",
        "segmentation",
        "lockstep: the result topic (remappable name); its message with a frame's header "
        "stamp releases the next frame",
        read_only=True,
    ),
    ParamSpec(
        "lockstep_type",
        "picosam2_ros/msg/Segmentation",
        "lockstep: message type of lockstep_topic (needs a header; an `objects` field with "
        "object_id is checked against the frame's prompts)",
        read_only=True,
    ),
    ParamSpec(
        "lockstep_timeout_s",
        5.0,
        "lockstep: seconds to wait for a frame's result; then the frame is counted as timed "
        "out and the replay moves on",
        float_range=(0.001, 3600.0),
        read_only=True,
    ),
    ParamSpec(
        "clear_prompts_service",
        "clear_prompts",
        "std_srvs/Trigger called (and answered) before each frame's prompts, so a segmenter "
        "starts every frame with that frame's prompts only; empty = do not call",
        read_only=True,
    ),
    ParamSpec(
        "prompt_barrier_service",
        "remove_object",
        "picosam2_ros/RemoveObject service of the segmenter called with object_id "
        "0 (a no-op) once per prompt + 1 after a frame's prompts, so they are applied before "
        "its image arrives; empty = do not call",
        read_only=True,
    ),
    ParamSpec(
        "topics",
        Parameter.Type.STRING_ARRAY,
        "bag topics to play (names as in the bag); unset = all",
        read_only=True,
    ),
    ParamSpec(
        "require_subscribers",
        Parameter.Type.STRING_ARRAY,
        "bag topics that must have a subscriber before playback starts (at most "
        "start_delay_s); unset = the image topics",
        read_only=True,
    ),
    ParamSpec(
        "result_subscribers",
        1,
        "lockstep: subscriptions on the result topic, this node's own included, to wait "
        "for before the first frame (2 with an evaluator, so it sees the first results)",
        int_range=(1, 100),
        read_only=True,
    ),
    ParamSpec(
        "start_delay_s",
        5.0,
        "most seconds to wait for subscribers (require_subscribers; lockstep: also the "
        "result publisher and the clear_prompts service) before the first frame",
        float_range=(0.0, 3600.0),
        read_only=True,
    ),
    ParamSpec(
        "exit_when_done",
        True,
        "exit (code 0) when the bag has been played; false: keep running (diagnostics, "
        "/dataset/info) until shut down",
        read_only=True,
    ),
    ParamSpec(
        "qos_depth",
        200,
        "KEEP_LAST depth of every publisher: at least the most messages one frame has on one "
        "topic (prompts per image)",
        int_range=(1, 100000),
        read_only=True,
    ),
    ParamSpec(
        "prefetch",
        16,
        "frame groups read and deserialised ahead of publishing",
        int_range=(1, 10000),
        read_only=True,
    ),
    ParamSpec(
        "progress_period_s",
        5.0,
        "seconds between progress log lines",
        float_range=(0.1, 3600.0),
        read_only=True,
    ),
    DIAGNOSTICS_PERIOD,
)
