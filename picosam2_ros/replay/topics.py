"""Which bag topics a replay plays, and the rosidl classes it publishes them with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from picosam2_ros.bags.layout import TOPIC_INFO
from picosam2_ros.bags.reader import BagReader, UnknownTypeError
from picosam2_ros.replay.groups import IMAGE_TYPES, import_message_type


class ReplayConfigError(ValueError):
    """A parameter makes the replay impossible; the message says which and why."""


@dataclass(frozen=True)
class TopicPlan:
    """The topics of one replay: ``classes`` by topic (every selected one), the dataset
    info topic (published once, "" when absent), the topics played frame by frame, the
    image topics among them, the number of frames, and the topics that need a
    subscriber before the first frame."""

    classes: dict[str, type]
    info_topic: str
    play_topics: list[str]
    image_topics: list[str]
    frames_total: int
    required: list[str]


def _absolute(names: Sequence[str] | None) -> list[str]:
    return [t if t.startswith("/") else f"/{t}" for t in (names or [])]


def plan_topics(
    bag: BagReader,
    bag_name: str,
    topics: Sequence[str] | None,
    require_subscribers: Sequence[str] | None,
) -> TopicPlan:
    """Select the topics of the open ``bag`` (``bag_name``: as the user gave it, for
    messages; ``topics``: the replay_node parameter, empty = all), check them and import
    their types. Raises BagError for a missing topic or a type that is not
    installed, ReplayConfigError for ``require_subscribers`` naming a topic not played."""
    index = bag.topics
    wanted = _absolute(topics)
    if wanted:
        # require() names every missing topic and lists what the bag has.
        bag.require({t: index[t].msgtype if t in index else "" for t in wanted})
        selected = list(dict.fromkeys(wanted))
    else:
        # Topics the index lists without messages are left out (BagReader.open has
        # already refused a bag without any); all of them when the index has no counts.
        selected = [t for t, info in index.items() if info.count > 0] or list(index)
    classes: dict[str, type] = {}
    problems: list[str] = []
    for topic in selected:
        msgtype = index[topic].msgtype
        try:
            classes[topic] = import_message_type(msgtype)
        except ImportError as exc:
            problems.append(f"{msgtype} (topic {topic}): {exc}")
    if problems:
        raise UnknownTypeError(
            f"bag {bag_name}: cannot publish message type(s) that are not "
            f"installed here: {'; '.join(problems)} (source the workspace that "
            "provides them, or leave the topics out with the `topics` parameter)"
        )
    play_topics = [t for t in selected if t != TOPIC_INFO]
    image_topics = [t for t in play_topics if index[t].msgtype in IMAGE_TYPES]
    required = _absolute(require_subscribers)
    unknown = [t for t in required if t not in play_topics]
    if unknown:
        raise ReplayConfigError(
            f"require_subscribers names topics that are not played: {', '.join(unknown)}"
        )
    return TopicPlan(
        classes,
        TOPIC_INFO if TOPIC_INFO in selected else "",
        play_topics,
        image_topics,
        sum(index[t].count for t in image_topics),
        required or list(image_topics),
    )
