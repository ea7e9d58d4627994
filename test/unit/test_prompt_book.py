"""Standing prompts: ids, limits, eviction of clicks, tracking and loss."""

from __future__ import annotations

import numpy as np
import pytest

from picosam2_ros.core.geometry import Roi
from picosam2_ros.core.pipeline import ObjectResult, ObjectStatus
from picosam2_ros.core.prompt_book import PromptBook
from picosam2_ros.core.prompts import ObjectPrompt, PromptError


def _result(prompt: ObjectPrompt, crop: Roi, mask: np.ndarray) -> ObjectResult:
    ys, xs = np.nonzero(mask)
    bbox = (
        Roi(
            crop.x + int(xs.min()), crop.y + int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1
        )
        if xs.size
        else None
    )
    status = ObjectStatus.OK if bbox else ObjectStatus.EMPTY
    return ObjectResult(prompt.object_id, status, 1.0, crop, mask, bbox, prompt)


def test_click_ids_follow_the_largest_id_in_use() -> None:
    book = PromptBook(max_objects=5)
    assert book.add_point(1, 1).object_id == 1
    book.set(ObjectPrompt.from_point(7, 2, 2))
    assert book.add_point(3, 3).object_id == 8
    assert book.remove(8)
    assert not book.remove(8)
    assert book.add_point(4, 4).object_id == 8
    assert [p.object_id for p in book.snapshot()] == [1, 7, 8]
    assert len(book) == 3
    assert book.clear() == 3 and len(book) == 0
    assert book.add_point(1, 1).object_id == 1


def test_full_book_evicts_oldest_click_but_never_explicit_prompts() -> None:
    book = PromptBook(max_objects=3)
    book.set(ObjectPrompt.from_point(1, 1, 1))
    book.add_point(2, 2)  # id 2
    book.add_point(3, 3)  # id 3
    new = book.add_point(4, 4)  # evicts click 2 (the oldest click), not prompt 1
    assert new.object_id == 4
    assert [p.object_id for p in book.snapshot()] == [1, 3, 4]
    with pytest.raises(PromptError, match="maximum of 3"):
        book.set(ObjectPrompt.from_point(10, 5, 5))
    book.set(ObjectPrompt.from_point(3, 9, 9))  # replacing: allowed, and 3 is no longer a click
    book.add_point(5, 5)  # evicts click 4
    assert [p.object_id for p in book.snapshot()] == [1, 3, 5]


def test_full_book_of_explicit_prompts_rejects_clicks() -> None:
    book = PromptBook(max_objects=1)
    book.set(ObjectPrompt.from_point(1, 1, 1))
    with pytest.raises(PromptError, match="none can be replaced"):
        book.add_point(2, 2)


def test_set_validates_structure() -> None:
    book = PromptBook(max_objects=2)
    with pytest.raises(PromptError, match="NaN"):
        book.set(ObjectPrompt.from_point(1, float("nan"), 1))
    assert len(book) == 0


def test_resize_drops_oldest_clicks() -> None:
    book = PromptBook(max_objects=4)
    book.set(ObjectPrompt.from_point(1, 1, 1))
    for _ in range(3):
        book.add_point(5, 5)
    assert book.resize(2, 5) == 2
    assert [p.object_id for p in book.snapshot()] == [1, 4]


def _square_mask(crop: Roi, x: int, y: int, w: int, h: int) -> np.ndarray:
    mask = np.zeros((crop.height, crop.width), dtype=bool)
    mask[y - crop.y : y - crop.y + h, x - crop.x : x - crop.x + w] = True
    return mask


def test_tracking_recentres_point_on_the_mask_in_frame_coordinates() -> None:
    book = PromptBook(max_objects=2)
    book.set(ObjectPrompt.from_point(1, 100.0, 100.0, track=True))
    book.set(ObjectPrompt.from_point(2, 300.0, 300.0, track=False))
    crop = Roi(52, 52, 96, 96)
    # Object moved: a 21x11 block centred at frame (120, 110).
    mask = _square_mask(crop, 110, 105, 21, 11)
    untracked_crop = Roi(252, 252, 96, 96)
    results = [
        _result(book.snapshot()[0], crop, mask),
        _result(book.snapshot()[1], untracked_crop, _square_mask(untracked_crop, 330, 330, 5, 5)),
    ]
    book.update_tracking(results)
    tracked, untracked = book.snapshot()
    np.testing.assert_allclose(tracked.foreground[0], (120.0, 110.0))
    np.testing.assert_array_equal(untracked.foreground[0], (300.0, 300.0))


def test_tracking_ignores_results_for_replaced_prompts() -> None:
    book = PromptBook(max_objects=2)
    old = ObjectPrompt.from_point(1, 100.0, 100.0, track=True)
    book.set(old)
    book.set(ObjectPrompt.from_point(1, 200.0, 200.0, track=True))  # user moved it meanwhile
    crop = Roi(52, 52, 96, 96)
    book.update_tracking([_result(old, crop, _square_mask(crop, 60, 60, 5, 5))])
    np.testing.assert_array_equal(book.snapshot()[0].foreground[0], (200.0, 200.0))


def test_object_lost_after_consecutive_empty_masks_and_reset() -> None:
    book = PromptBook(max_objects=2, lost_after=3)
    book.set(ObjectPrompt.from_point(1, 100.0, 100.0, track=True))
    crop = Roi(52, 52, 96, 96)
    empty = np.zeros((96, 96), dtype=bool)
    for frame in range(3):
        assert not book.is_lost(1), frame
        book.update_tracking([_result(book.snapshot()[0], crop, empty)])
    assert book.is_lost(1)
    # The object reappears: no longer lost.
    book.update_tracking([_result(book.snapshot()[0], crop, _square_mask(crop, 90, 90, 9, 9))])
    assert not book.is_lost(1)
    # Lost again, then a newly set prompt resets it.
    for _ in range(3):
        book.update_tracking([_result(book.snapshot()[0], crop, empty)])
    assert book.is_lost(1)
    book.set(ObjectPrompt.from_point(1, 50.0, 50.0, track=True))
    assert not book.is_lost(1)


def test_untracked_prompts_are_never_lost() -> None:
    book = PromptBook(max_objects=1, lost_after=1)
    book.set(ObjectPrompt.from_point(1, 10.0, 10.0))
    crop = Roi(0, 0, 96, 96)
    book.update_tracking([_result(book.snapshot()[0], crop, np.zeros((96, 96), bool))])
    assert not book.is_lost(1)


def test_box_tracking_shifts_box_with_the_mask_and_keeps_its_size() -> None:
    book = PromptBook(max_objects=1)
    empty = np.empty((0, 2))
    book.set(ObjectPrompt(1, empty, np.empty(0), box=(100.0, 100.0, 160.0, 120.0), track=True))
    crop = Roi(64, 44, 132, 132)
    # Frame 1: the mask's bbox establishes the reference; the box does not move.
    book.update_tracking([_result(book.snapshot()[0], crop, _square_mask(crop, 100, 100, 60, 20))])
    assert book.snapshot()[0].box == (100.0, 100.0, 160.0, 120.0)
    # Frame 2: the object moved by (+7, -4).
    book.update_tracking([_result(book.snapshot()[0], crop, _square_mask(crop, 107, 96, 60, 20))])
    assert book.snapshot()[0].box == (107.0, 96.0, 167.0, 116.0)
