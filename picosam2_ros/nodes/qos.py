"""QoS of the segmentation results, shared by every node that publishes or scores them."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

#: Per-object results (``segmentation``): reliable, the last 10 kept TRANSIENT_LOCAL.
#: A subscription can match a writer a moment after that writer has matched it
#: (discovery is not symmetric in time), and a volatile reader drops what the writer
#: sent in that gap; a transient-local reader gets it resent. Volatile subscribers
#: (the usual robot-stack consumer) still match and never see old results.
RESULTS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
