"""validate_prompt rejects what cannot be segmented, naming the problem."""

from __future__ import annotations

import numpy as np
import pytest

from picosam2_ros.core.prompts import ObjectPrompt, PromptError, validate_prompt


def _prompt(points: object, labels: object, box: object = None, object_id: int = 3) -> ObjectPrompt:
    return ObjectPrompt(object_id, points, labels, box)  # type: ignore[arg-type]


def test_valid_prompts_pass() -> None:
    validate_prompt(ObjectPrompt.from_point(1, 10.5, 20.0), 640, 480)
    validate_prompt(_prompt([], [], box=(10.0, 10.0, 50.0, 30.0)), 640, 480)
    validate_prompt(_prompt([[5, 5], [7, 7]], [1, 0]))


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (_prompt([[1.0, 2.0], [np.nan, 4.0]], [1, 1]), "object 3: point 1 has NaN coordinate"),
        (_prompt([[1.0, np.inf]], [1]), "point 0 has an infinite coordinate"),
        (_prompt([[-1.0, 2.0]], [1]), "point 0 has a negative coordinate"),
        (_prompt([], []), "needs at least one foreground point or a box"),
        (_prompt([[1.0, 2.0]], [0]), "needs at least one foreground point or a box"),
        (_prompt([[1.0, 2.0], [3.0, 4.0]], [1]), "2 points but 1 labels"),
        (_prompt([[1.0, 2.0]], [2]), "label of point 0 is 2"),
        (_prompt([[1.0, 2.0, 3.0]], [1]), "points must have shape (N, 2)"),
        (_prompt([], [], box=(10.0, 10.0, 5.0, 30.0)), "x_min < x_max"),
        (_prompt([], [], box=(10.0, np.nan, 15.0, 30.0)), "box has a NaN"),
        (ObjectPrompt.from_point(0, 1.0, 1.0), "object_id must be >= 1"),
    ],
)
def test_structural_rejections_name_the_problem(prompt: ObjectPrompt, message: str) -> None:
    with pytest.raises(PromptError) as err:
        validate_prompt(prompt)
    assert message in str(err.value)


def test_out_of_frame_point_rejected_only_with_frame_size() -> None:
    prompt = ObjectPrompt.from_point(2, 640.0, 100.0)
    validate_prompt(prompt)  # structurally fine
    with pytest.raises(PromptError, match=r"object 2: point 0 \(640, 100\) is outside the 640x480"):
        validate_prompt(prompt, 640, 480)
    validate_prompt(ObjectPrompt.from_point(2, 639.9, 479.9), 640, 480)


def test_box_must_overlap_frame() -> None:
    partly = _prompt([], [], box=(600.0, 400.0, 700.0, 500.0))
    validate_prompt(partly, 640, 480)
    outside = _prompt([], [], box=(650.0, 10.0, 700.0, 50.0))
    with pytest.raises(PromptError, match="does not overlap the 640x480 frame"):
        validate_prompt(outside, 640, 480)


def test_prompt_arrays_are_normalised_and_read_only() -> None:
    p = _prompt([[1, 2], [3, 4]], [True, False])
    assert p.points.dtype == np.float64 and p.points.shape == (2, 2)
    assert p.labels.dtype == np.uint8
    np.testing.assert_array_equal(p.foreground, [[1.0, 2.0]])
    np.testing.assert_array_equal(p.background, [[3.0, 4.0]])
    with pytest.raises(ValueError, match="read-only"):
        p.points[0, 0] = 9.0
    assert _prompt([], [], box=(1, 2, 3, 4)).points.shape == (0, 2)


def test_moved_to_shifts_every_point_with_the_first_foreground_point() -> None:
    p = _prompt([[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]], [0, 1, 1])
    moved = p.moved_to(20.0, 30.0)
    # The first foreground point lands on (20, 30); the others keep their offsets.
    np.testing.assert_array_equal(moved.points, [[16.0, 26.0], [20.0, 30.0], [24.0, 34.0]])
    np.testing.assert_array_equal(p.points[1], [5.0, 5.0])  # original untouched
    assert moved.object_id == 3 and moved != p
    assert p.moved_to(5.0, 5.0) == p


def test_equality_compares_array_contents() -> None:
    a = ObjectPrompt.from_point(1, 2.0, 3.0, track=True)
    assert a == ObjectPrompt.from_point(1, 2.0, 3.0, track=True)
    assert a != ObjectPrompt.from_point(1, 2.0, 3.0, track=False)
    assert a != ObjectPrompt.from_point(1, 2.0, 4.0, track=True)
