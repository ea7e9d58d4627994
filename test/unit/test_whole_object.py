"""Windows around a prompt (core.window) and point -> whole object (core.whole_object)
through the pipeline, with the colour-match ONNX model through onnxruntime.

The colour-match model segments the region whose colour matches its input's centre, at
any zoom, so it stands for a network that segments the centre object at any scale: on
flat synthetic objects the whole-object answer is known to the pixel.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from picosam2_ros.backends.onnx_backend import OnnxBackend
from picosam2_ros.core.box_prior import (
    OUTSIDE_BOX_LOGIT,
    apply_box_prior,
    ellipse_distance,
    inside_box,
)
from picosam2_ros.core.metrics import mask_iou
from picosam2_ros.core.pipeline import CropSettings, ObjectStatus, segment_frame
from picosam2_ros.core.postprocess import erase_components_at, keep_components_at
from picosam2_ros.core.preprocess import normalise
from picosam2_ros.core.prompts import ObjectPrompt
from picosam2_ros.core.whole_object import (
    BoxRun,
    ClickSearch,
    PointRun,
    WholeObjectSettings,
    WindowOutcome,
    _click_component,
    _Component,
    _run_windows,
    find_objects,
    second_side,
)
from picosam2_ros.core.window import (
    MEAN_RGB,
    Window,
    logits_to_frame,
    window_mask,
    window_to_model_input,
)
from picosam2_ros.testing.scenes import SceneObject, render_scene
from test.unit.test_pipeline import ConstantBackend, CountingBackend, _to_encoding

W, H = 640, 480
RED, GREEN, BLUE = (220, 40, 40), (40, 200, 60), (40, 60, 210)
WHOLE = CropSettings(whole_object=WholeObjectSettings())
# The search that ends with the box model on the second window's extent.
BOXED: dict = {"windows": 2, "box_refine": True}


def _both(backend: object) -> dict[str, object]:
    return {"point": backend, "box": backend}


def _full(res: object, width: int = W, height: int = H) -> np.ndarray:
    out = np.zeros((height, width), dtype=bool)
    out[res.crop.slices] = res.mask  # type: ignore[attr-defined]
    return out


# ----------------------------------------------------------------------------- windows
@pytest.mark.parametrize(("cx", "cy", "side"), [(320, 240, 96), (100, 50, 300), (630, 470, 200)])
def test_window_round_trip_lands_on_the_same_pixels(cx: int, cy: int, side: int) -> None:
    """Frame mask -> window grid -> logits -> back onto the frame: the same object."""
    obj = SceneObject("ellipse", RED, cx - side // 4, cy - side // 5, side // 2, side // 3)
    _, (truth,) = render_scene(W, H, [obj])
    window = Window.around_pixel(cx, cy, side)
    small = window_mask(truth, window)
    roi, logits = logits_to_frame(np.where(small, 4.0, -4.0), window, W, H)
    back = np.zeros((H, W), dtype=bool)
    back[roi.slices] = logits > 0
    assert mask_iou(back, truth) > 0.93
    # The prompt pixel is at the input's centre whatever the window's size.
    assert small[47:49, 47:49].sum() >= 3 if truth[cy, cx] else True


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "rgba8", "bgra8"])
def test_window_outside_the_frame_is_filled_with_the_mean(encoding: str) -> None:
    rgb, _ = render_scene(W, H, [SceneObject("rect", GREEN, 0, 0, 40, 40)])
    image = _to_encoding(rgb, encoding)
    # Centred on the top-left corner pixel: three quarters of the window lie outside.
    crop = window_to_model_input(image, encoding, Window.around_pixel(0, 0, 160))
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    fill = crop[5, 5].astype(int)
    if encoding == "mono8":
        assert abs(int(fill[0]) - int(fill[1])) == 0 and 100 < fill[0] < 130
    else:
        np.testing.assert_array_equal(fill, MEAN_RGB)
        # The mean colour normalises to (almost) zero: the network sees "nothing".
        assert np.abs(normalise(crop[None])[0, :, 5, 5]).max() < 0.02
        assert tuple(crop[60, 60]) == (40, 200, 60)  # inside the frame: the object


def test_window_rejects_bad_geometry() -> None:
    with pytest.raises(ValueError, match="positive"):
        Window(10.0, 10.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        Window(float("nan"), 10.0, 50.0)
    for bad in ({"fill": 0.0}, {"edge_grow": 0.5}, {"box_extend": -0.1}, {"extent_offset": -1.0}):
        with pytest.raises(ValueError, match="out of range"):
            WholeObjectSettings(**bad)  # type: ignore[arg-type]


# -------------------------------------------------------------------- whole object
@pytest.mark.parametrize(
    ("shape", "x", "y", "w", "h"),
    [("ellipse", 220, 150, 170, 140), ("rect", 250, 200, 40, 30), ("ellipse", 0, 300, 160, 180)],
)
def test_click_returns_the_whole_object(
    colour_backend: OnnxBackend, shape: str, x: int, y: int, w: int, h: int
) -> None:
    obj = SceneObject(shape, BLUE, x, y, w, h)
    rgb, (truth,) = render_scene(W, H, [obj])
    ys, xs = np.nonzero(truth)
    k = len(xs) // 3  # a click away from the centre: users click anywhere
    prompt = ObjectPrompt.from_point(1, float(xs[k]), float(ys[k]))
    (native,) = segment_frame(rgb, "rgb8", [prompt], _both(colour_backend), CropSettings()).objects
    (whole,) = segment_frame(rgb, "rgb8", [prompt], _both(colour_backend), WHOLE).objects
    assert whole.status == ObjectStatus.OK
    assert mask_iou(_full(whole), truth) > 0.9
    if w * h > 96 * 96 * 2:  # larger than the native crop: the crop cut it
        assert mask_iou(_full(native), truth) < 0.6


def test_three_batched_runs_per_frame_whatever_the_number_of_clicks(
    colour_backend: OnnxBackend,
) -> None:
    objs = [
        SceneObject("rect", RED, 40, 40, 200, 150),
        SceneObject("ellipse", GREEN, 350, 220, 120, 200),
        SceneObject("rect", BLUE, 500, 60, 30, 30),
    ]
    rgb, truths = render_scene(W, H, objs)
    prompts = [
        ObjectPrompt.from_point(i + 1, o.x + o.width / 2, o.y + o.height / 2)
        for i, o in enumerate(objs)
    ]
    every_run = CropSettings(whole_object=WholeObjectSettings(reuse_within=1.0, **BOXED))
    point, box = CountingBackend(colour_backend), CountingBackend(colour_backend)
    frame = segment_frame(rgb, "rgb8", prompts, {"point": point, "box": box}, every_run)
    assert point.batches == [3, 3] and box.batches == [3]
    for res, truth in zip(frame.objects, truths, strict=True):
        assert mask_iou(_full(res), truth) > 0.9
    # A next window within 1.3x of the last is skipped (the small square's second):
    # one run fewer, the same objects.
    boxed = CropSettings(whole_object=WholeObjectSettings(**BOXED))
    point, box = CountingBackend(colour_backend), CountingBackend(colour_backend)
    frame = segment_frame(rgb, "rgb8", prompts, {"point": point, "box": box}, boxed)
    assert point.batches == [3, 2] and box.batches == [3]
    for res, truth in zip(frame.objects, truths, strict=True):
        assert mask_iou(_full(res), truth) > 0.9
    # The defaults: point windows only, the last one's mask is the answer.
    every_window = CropSettings(whole_object=WholeObjectSettings(reuse_within=1.0))
    point, box = CountingBackend(colour_backend), CountingBackend(colour_backend)
    frame = segment_frame(rgb, "rgb8", prompts, {"point": point, "box": box}, every_window)
    assert point.batches == [3, 3, 3] and box.batches == []
    for res, truth in zip(frame.objects, truths, strict=True):
        assert mask_iou(_full(res), truth) > 0.9
    point, box = CountingBackend(colour_backend), CountingBackend(colour_backend)
    frame = segment_frame(rgb, "rgb8", prompts, {"point": point, "box": box}, WHOLE)
    assert sum(point.batches) < 9 and len(point.batches) <= 3 and box.batches == []
    for res, truth in zip(frame.objects, truths, strict=True):
        assert mask_iou(_full(res), truth) > 0.9


def test_second_window_grows_when_the_first_mask_reaches_its_edge(
    colour_backend: OnnxBackend,
) -> None:
    # A long bar: the first window (0.12 x 480 = 57.6 px) sees it cross both side edges.
    rgb, _ = render_scene(W, H, [SceneObject("rect", RED, 10, 220, 620, 40)])
    settings = WholeObjectSettings(edge_window=False, reuse_within=1.0, windows=2)
    (outcome,) = find_objects(rgb, "rgb8", [(320.0, 240.0)], colour_backend.infer, settings)
    assert outcome.found
    assert outcome.window.side == pytest.approx(4.0 * 0.12 * 480)
    # The bar still crosses the grown window (x 205..435); its height is found exactly.
    x0, y0, x1, y1 = outcome.box  # type: ignore[misc]
    assert x0 == pytest.approx(205.3, abs=3) and x1 == pytest.approx(435.7, abs=3)
    assert y0 == pytest.approx(220, abs=3) and y1 == pytest.approx(260, abs=3)
    # A small object: the second window is sized from its extent, not larger than needed.
    rgb, _ = render_scene(W, H, [SceneObject("rect", RED, 300, 200, 20, 20)])
    (outcome,) = find_objects(rgb, "rgb8", [(310.0, 210.0)], colour_backend.infer, settings)
    assert outcome.window.side == pytest.approx(settings.min_side)


def _reference_find_objects(
    image: np.ndarray,
    clicks: list[tuple[float, float]],
    infer: object,
    settings: WholeObjectSettings,
    width: int = W,
    height: int = H,
) -> list[WindowOutcome]:
    """The batched search as first written (before ``ClickSearch``): every click's first
    window, then each next window sized from the last one's mask, one batch per stage."""
    first = max(settings.min_side, settings.first_side_fraction * min(width, height))
    first = min(first, settings.max_side_factor * max(width, height))
    centres = [(np.floor(x) + 0.5, np.floor(y) + 0.5) for x, y in clicks]
    windows = [Window(float(cx), float(cy), first) for cx, cy in centres]
    logits = _run_windows(image, "rgb8", windows, infer, 96)  # type: ignore[arg-type]
    comps = [
        _click_component(lg, w, width, height, 0.0) for lg, w in zip(logits, windows, strict=True)
    ]
    active = [k for k, c in enumerate(comps) if c is not None]
    for _ in range(settings.windows - 1):
        rerun, nexts = [], []
        for k in active:
            comp, w = comps[k], windows[k]
            assert comp is not None
            side = second_side(centres[k], w, comp, settings, width, height)
            if max(side / w.side, w.side / side) > settings.reuse_within:
                rerun.append(k)
                nexts.append(Window(centres[k][0], centres[k][1], side))
        if not nexts:
            break
        new = _run_windows(image, "rgb8", nexts, infer, 96)  # type: ignore[arg-type]
        logits = logits.copy()
        for k, w, lg in zip(rerun, nexts, new, strict=True):
            windows[k], logits[k] = w, lg
            comps[k] = _click_component(lg, w, width, height, 0.0)
        active = [k for k in rerun if comps[k] is not None]
    return [
        WindowOutcome(w, lg, c.box if c else None, c is not None)
        for w, lg, c in zip(windows, logits, comps, strict=True)
    ]


_SCENE = [
    SceneObject("rect", RED, 10, 220, 620, 40),  # crosses every window: grows
    SceneObject("ellipse", GREEN, 350, 20, 160, 120),
    SceneObject("rect", BLUE, 80, 60, 24, 20),  # small: min_side
    SceneObject("ellipse", BLUE, 0, 330, 150, 150),  # at the frame's corner
]
# The policy as first written: no extra window at the edge, one threshold throughout.
_FIRST: dict = {"edge_window": False, "extent_offset": 0.0}
_CLICKS = [(320.0, 240.0), (430.7, 80.2), (92.0, 70.0), (40.0, 430.0), (600.0, 400.0)]


@pytest.mark.parametrize(
    "settings",
    [
        WholeObjectSettings(**BOXED, **_FIRST),
        WholeObjectSettings(windows=3, box_refine=False, **_FIRST),
        WholeObjectSettings(first_side_fraction=0.3, grow=2.0, reuse_within=1.5, **_FIRST),
        WholeObjectSettings(windows=1, **_FIRST),
    ],
)
def test_click_search_matches_the_first_batched_search(
    colour_backend: OnnxBackend, settings: WholeObjectSettings
) -> None:
    rgb, _ = render_scene(W, H, _SCENE)
    want = _reference_find_objects(rgb, _CLICKS, colour_backend.infer, settings)
    got = find_objects(rgb, "rgb8", _CLICKS, colour_backend.infer, settings)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g.window, g.box, g.found) == (w.window, w.box, w.found)
        np.testing.assert_array_equal(g.logits, w.logits)
    # One run at a time (a camera's one run per frame) is the same search.
    for click, w in zip(_CLICKS, want, strict=True):
        search = ClickSearch(click, W, H, settings)
        runs = []
        while isinstance(run := search.next_run(), PointRun):
            assert search.next_run() == run  # no side effect until taken
            crop = window_to_model_input(rgb, "rgb8", run.window)
            search.take_point(colour_backend.infer(normalise(crop[None]))[0])
            runs.append(run)
        assert len(runs) <= settings.windows
        out = search.outcome()
        assert (out.window, out.box, out.found) == (w.window, w.box, w.found)
        if settings.box_refine and w.found:
            assert run == BoxRun(w.box)  # type: ignore[arg-type]
            search.take_box()
        assert search.next_run() is None and search.finished


def test_click_search_refuses_runs_out_of_turn() -> None:
    search = ClickSearch((100.0, 100.0), W, H, WholeObjectSettings())
    with pytest.raises(RuntimeError, match="no point run"):
        search.outcome()
    with pytest.raises(RuntimeError, match="take_box"):
        search.take_box()
    with pytest.raises(ValueError, match="S, S"):
        search.take_point(np.zeros((96, 95), dtype=np.float32))
    search.take_point(np.full((96, 96), -3.0, dtype=np.float32))  # nothing under the click
    assert search.next_run() is None and not search.outcome().found
    with pytest.raises(RuntimeError, match="take_point"):
        search.take_point(np.zeros((96, 96), dtype=np.float32))


def _take_all(search: ClickSearch, rgb: np.ndarray, infer: object) -> list[PointRun]:
    runs = []
    while isinstance(run := search.next_run(), PointRun):
        crop = window_to_model_input(rgb, "rgb8", run.window)
        search.take_point(infer(normalise(crop[None]))[0])  # type: ignore[operator]
        runs.append(run)
    return runs


def test_a_window_still_cut_gets_a_larger_window_instead_of_the_box(
    colour_backend: OnnxBackend,
) -> None:
    bar = SceneObject("rect", RED, 10, 220, 620, 40)  # crosses the first two windows
    rgb, (truth,) = render_scene(W, H, [bar])
    search = ClickSearch((320.0, 240.0), W, H, WholeObjectSettings(**BOXED))
    runs = _take_all(search, rgb, colour_backend.infer)
    sides = [r.window.side for r in runs]
    assert sides == pytest.approx([0.12 * 480, 4 * 0.12 * 480, 2.5 * 4 * 0.12 * 480])
    assert search.next_run() is None and search.outcome().found  # its mask is the answer
    # Through the pipeline: three point runs, no box run, and most of the bar.
    point, box = CountingBackend(colour_backend), CountingBackend(colour_backend)
    prompt = ObjectPrompt.from_point(1, 320.0, 240.0)
    boxed = CropSettings(whole_object=WholeObjectSettings(**BOXED))
    (res,) = segment_frame(rgb, "rgb8", [prompt], {"point": point, "box": box}, boxed).objects
    assert point.batches == [1, 1, 1] and box.batches == []
    assert mask_iou(_full(res), truth) > 0.75  # 576 of its 620 px, at 6 px per input px
    # The box of the cut second window (230 px) would have given far less of it.
    cut = CropSettings(whole_object=WholeObjectSettings(edge_window=False, **BOXED))
    (boxed,) = segment_frame(rgb, "rgb8", [prompt], _both(colour_backend), cut).objects
    assert mask_iou(_full(boxed), truth) < 0.5
    # An object the second window frames whole still goes to the box model.
    rgb, _ = render_scene(W, H, [SceneObject("ellipse", RED, 250, 180, 140, 120)])
    search = ClickSearch((320.0, 240.0), W, H, WholeObjectSettings(**BOXED))
    assert len(_take_all(search, rgb, colour_backend.infer)) == 2
    assert isinstance(search.next_run(), BoxRun)


def test_the_defaults_answer_with_the_last_of_three_point_windows(
    colour_backend: OnnxBackend,
) -> None:
    bar = SceneObject("rect", RED, 10, 220, 620, 40)  # cut by the first two windows
    rgb, (truth,) = render_scene(W, H, [bar])
    search = ClickSearch((320.0, 240.0), W, H, WholeObjectSettings())
    runs = _take_all(search, rgb, colour_backend.infer)
    first = 0.12 * 480
    assert [r.window.side for r in runs] == pytest.approx([first, 4 * first, 16 * first])
    assert search.next_run() is None and search.outcome().found
    point, box = CountingBackend(colour_backend), CountingBackend(colour_backend)
    prompt = ObjectPrompt.from_point(1, 320.0, 240.0)
    (res,) = segment_frame(rgb, "rgb8", [prompt], {"point": point, "box": box}, WHOLE).objects
    assert point.batches == [1, 1, 1] and box.batches == []
    assert mask_iou(_full(res), truth) > 0.8
    # An object the first window frames whole: the next window is sized from its extent
    # and one within 1.3x of the last is skipped, so small objects cost fewer runs.
    rgb, (truth,) = render_scene(W, H, [SceneObject("rect", RED, 300, 200, 20, 20)])
    point = CountingBackend(colour_backend)
    prompt = ObjectPrompt.from_point(1, 310.0, 210.0)
    (res,) = segment_frame(rgb, "rgb8", [prompt], {"point": point, "box": point}, WHOLE).objects
    assert point.batches == [1] and mask_iou(_full(res), truth) > 0.8


def test_box_extends_on_the_sides_where_the_mask_was_cut(colour_backend: OnnxBackend) -> None:
    rgb, _ = render_scene(W, H, [SceneObject("rect", RED, 10, 220, 620, 40)])
    plain = ClickSearch((320.0, 240.0), W, H, WholeObjectSettings(edge_window=False, **BOXED))
    _take_all(plain, rgb, colour_backend.infer)
    wide = ClickSearch(
        (320.0, 240.0), W, H, WholeObjectSettings(edge_window=False, box_extend=0.5, **BOXED)
    )
    _take_all(wide, rgb, colour_backend.infer)
    p, q = plain.next_run(), wide.next_run()
    assert isinstance(p, BoxRun) and isinstance(q, BoxRun)
    x0, y0, x1, y1 = p.box
    grown = (x0 - 0.5 * (x1 - x0), y0, x1 + 0.5 * (x1 - x0), y1)  # cut left and right only
    assert q.box == pytest.approx(grown)
    # Clipped to the frame.
    wider = ClickSearch(
        (320.0, 240.0), W, H, WholeObjectSettings(edge_window=False, box_extend=2.0, **BOXED)
    )
    _take_all(wider, rgb, colour_backend.infer)
    r = wider.next_run()
    assert isinstance(r, BoxRun) and r.box == pytest.approx((0.0, y0, W, y1))


def _blob(core: float, fringe: float) -> np.ndarray:
    """(96, 96) logits: a 16-px core around the centre inside a 40-px fringe."""
    logits = np.full((96, 96), -6.0, dtype=np.float32)
    logits[28:68, 28:68] = fringe
    logits[40:56, 40:56] = core
    return logits


def test_later_windows_take_the_extent_from_the_confident_core() -> None:
    settings = WholeObjectSettings(extent_offset=1.0, reuse_within=1.0, **BOXED)
    search = ClickSearch((320.0, 240.0), W, H, settings)
    search.take_point(_blob(3.0, 0.5))  # the first window: the fringe counts
    first = search.outcome()
    assert first.box is not None
    assert first.box[2] - first.box[0] == pytest.approx(40 * first.window.side / 96)
    run = search.next_run()
    assert isinstance(run, PointRun)
    search.take_point(_blob(3.0, 0.5))  # the second: only logit > 1
    second = search.outcome()
    assert second.box is not None
    assert second.box[2] - second.box[0] == pytest.approx(16 * run.window.side / 96)
    assert search.next_run() == BoxRun(second.box)
    # A mask without a confident core keeps its whole component; offset 0 = one threshold.
    for offset, fringe, width in ((1.0, 0.5, 40), (0.0, 0.5, 40), (1.0, 2.0, 40)):
        settings = WholeObjectSettings(extent_offset=offset, reuse_within=1.0)
        search = ClickSearch((320.0, 240.0), W, H, settings)
        search.take_point(_blob(0.8, 0.5))
        run = search.next_run()
        assert isinstance(run, PointRun)
        search.take_point(_blob(0.8, fringe) if offset == 0.0 else _blob(fringe, fringe))
        box = search.outcome().box
        assert box is not None and box[2] - box[0] == pytest.approx(width * run.window.side / 96)


def test_nothing_found_keeps_the_native_crop(colour_model_path: object) -> None:
    rgb, _ = render_scene(W, H, [SceneObject("rect", RED, 300, 200, 50, 50)])
    blind = CountingBackend(ConstantBackend(-5.0))  # type: ignore[arg-type]
    prompt = ObjectPrompt.from_point(3, 320.0, 220.0)
    (res,) = segment_frame(rgb, "rgb8", [prompt], _both(blind), WHOLE).objects
    assert res.status == ObjectStatus.EMPTY and res.object_id == 3
    assert (res.crop.width, res.crop.height) == (96, 96)  # the native crop's answer
    assert blind.batches == [1, 1]  # the first window, then the native crop


def test_background_point_still_erases_in_whole_object_mode(colour_backend: OnnxBackend) -> None:
    objs = [
        SceneObject("rect", RED, 100, 100, 200, 120),
        SceneObject("rect", RED, 320, 110, 60, 60),
    ]
    rgb, (big, small) = render_scene(W, H, objs)
    prompt = ObjectPrompt(1, np.array([[200.0, 160.0], [350.0, 140.0]]), np.array([1, 0]))
    (res,) = segment_frame(rgb, "rgb8", [prompt], _both(colour_backend), WHOLE).objects
    full = _full(res)
    assert not (full & small).any()
    assert mask_iou(full & ~small, big) > 0.85


def test_keep_components_at() -> None:
    mask = np.zeros((20, 30), dtype=bool)
    mask[2:6, 2:6] = True
    mask[10:15, 20:28] = True
    kept = keep_components_at(mask, np.array([[22.0, 12.0]]))
    assert kept.sum() == 40 and kept[12, 22] and not kept[3, 3]
    # A point off the mask keeps everything (the network's answer stands).
    np.testing.assert_array_equal(keep_components_at(mask, np.array([[0.0, 19.0]])), mask)
    assert cv2.countNonZero(keep_components_at(mask, np.empty((0, 2))).view(np.uint8)) == 56


# ------------------------------------------- fast paths against plain references
def _labelled_click_component(
    logits: np.ndarray, window: Window, width: int, height: int, threshold: float
) -> _Component | None:
    """``_click_component`` written plainly: label every component, take the one with
    most pixels around the centre, map its box to the frame."""
    size = logits.shape[-1]
    mask = np.ascontiguousarray(logits > threshold, dtype=np.uint8)
    if not mask.any():
        return None
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    c = size // 2
    near = labels[c - 2 : c + 2, c - 2 : c + 2]
    hit = near[near > 0]
    if hit.size == 0:
        return None
    x, y, w, h = (int(v) for v in stats[int(np.bincount(hit).argmax()), :4])
    scale = window.side / size
    left, top = window.cx - window.side / 2.0, window.cy - window.side / 2.0
    sides = (
        x == 0 and left > 0.5,
        y == 0 and top > 0.5,
        x + w == size and left + window.side < width - 0.5,
        y + h == size and top + window.side < height - 0.5,
    )
    box = (
        max(0.0, left + x * scale),
        max(0.0, top + y * scale),
        min(float(width), left + (x + w) * scale),
        min(float(height), top + (y + h) * scale),
    )
    return _Component(box, sides)


def _labelled_components(mask: np.ndarray, points: np.ndarray, keep: bool) -> np.ndarray:
    """``keep_components_at`` / ``erase_components_at`` written plainly with labels."""
    out = np.array(mask, dtype=bool)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    cols, rows = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
    ok = (cols >= 0) & (cols < out.shape[1]) & (rows >= 0) & (rows < out.shape[0])
    cols, rows = cols[ok], rows[ok]
    if cols.size == 0 or not out[rows, cols].any():
        return out
    _, labels = cv2.connectedComponents(out.view(np.uint8), connectivity=8)
    hit = np.unique(labels[rows, cols])
    chosen = np.isin(labels, hit[hit != 0])
    return chosen if keep else out & ~chosen


def _dense_box_prior(logits: np.ndarray, boxes: np.ndarray, weight: float) -> np.ndarray:
    """``apply_box_prior`` written plainly, every pixel of every crop."""
    size = logits.shape[-1]
    out = np.empty(logits.shape, dtype=np.float32)
    for i in range(logits.shape[0]):
        shifted = logits[i] + weight * (1.0 - ellipse_distance(boxes[i], size))
        out[i] = np.where(inside_box(boxes[i], size), shifted, OUTSIDE_BOX_LOGIT)
    return out


def test_click_component_matches_the_labelling() -> None:
    rng = np.random.default_rng(7)
    for k in range(600):
        field = rng.normal(size=(96, 96)).astype(np.float32)
        logits = cv2.GaussianBlur(field, (0, 0), rng.uniform(0.5, 8.0))
        logits = logits / (logits.std() + 1e-9) + rng.uniform(-1.5, 1.5)
        if k % 3 == 0:  # several components meet around the centre
            logits[46:50, 46:50] = rng.choice([-1.0, 1.0], (4, 4))
        window = Window(rng.uniform(0, W), rng.uniform(0, H), rng.uniform(20, 900))
        threshold = float(rng.choice([0.0, 0.5, 1.0]))
        want = _labelled_click_component(logits, window, W, H, threshold)
        assert _click_component(logits, window, W, H, threshold) == want


def test_component_selection_matches_the_labelling() -> None:
    rng = np.random.default_rng(3)
    for k in range(400):
        h, w = (int(v) for v in rng.integers(1, 120, 2))
        field = rng.normal(size=(h, w)).astype(np.float32)
        mask = cv2.GaussianBlur(field, (0, 0), rng.uniform(0.3, 5.0)) > 0.02 * rng.normal()
        if k % 2:
            mask = mask[:, ::-1]  # not C-contiguous
        n = int(rng.integers(0, 5))
        points = np.c_[rng.uniform(-3, w + 3, n), rng.uniform(-3, h + 3, n)]
        kept = keep_components_at(mask, points)
        np.testing.assert_array_equal(kept, _labelled_components(mask, points, keep=True))
        erased = erase_components_at(mask, points)
        np.testing.assert_array_equal(erased, _labelled_components(mask, points, keep=False))
        assert kept.dtype == erased.dtype == bool


def test_box_prior_matches_the_dense_formula_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    for k in range(300):
        n = int(rng.integers(1, 5))
        logits = (5.0 * rng.normal(size=(n, 96, 96))).astype(np.float32)
        start = rng.uniform(-10, 106, (n, 2))
        boxes = np.clip(np.c_[start, start + rng.uniform(-5, 100, (n, 2))], 0.0, 96.0)
        if k % 4 == 0:  # box edges on pixel centres and borders
            boxes = np.round(2.0 * boxes) / 2.0
        weight = float(rng.choice([0.5, 3.0, 6.2]))
        got = apply_box_prior(logits, boxes, weight)
        want = _dense_box_prior(logits, boxes, weight)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


class _BoxPriorBackend(CountingBackend):
    """A box model decoded with its box (``box_prior_weight``) on top of a real one."""

    box_prior_weight = 3.0


@pytest.mark.parametrize(
    "settings",
    [
        CropSettings(whole_object=WholeObjectSettings()),
        CropSettings(threshold=0.7, whole_object=WholeObjectSettings(box_refine=False)),
        CropSettings(whole_object=WholeObjectSettings(windows=3, box_refine=False)),
    ],
)
def test_whole_object_frame_matches_the_plain_references(
    colour_backend: OnnxBackend, settings: CropSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generated scene through ``segment_frame`` with the fast component and box-prior
    code, then with the plain references patched in: the same masks, bit for bit."""
    rgb, _ = render_scene(W, H, _SCENE)
    fg = [ObjectPrompt.from_point(k + 1, x, y) for k, (x, y) in enumerate(_CLICKS)]
    background = ObjectPrompt(9, np.array([[200.0, 240.0], [440.0, 80.0]]), np.array([1, 0]))
    prompts = [*fg, background]
    backends = {"point": colour_backend, "box": _BoxPriorBackend(colour_backend)}

    def run() -> list[tuple[object, ...]]:
        frame = segment_frame(rgb, "rgb8", prompts, backends, settings)  # type: ignore[arg-type]
        return [(o.status, o.score, o.crop, o.bbox, o.mask.copy()) for o in frame.objects]

    fast = run()
    monkeypatch.setattr(
        "picosam2_ros.core.whole_object._click_component", _labelled_click_component
    )
    monkeypatch.setattr(
        "picosam2_ros.core.pipeline.keep_components_at",
        lambda m, p: _labelled_components(m, p, keep=True),
    )
    monkeypatch.setattr(
        "picosam2_ros.core.pipeline.erase_components_at",
        lambda m, p: _labelled_components(m, p, keep=False),
    )
    monkeypatch.setattr("picosam2_ros.core.pipeline.apply_box_prior", _dense_box_prior)
    plain = run()
    assert len(fast) == len(plain) == len(prompts)
    for f, p in zip(fast, plain, strict=True):
        assert f[:4] == p[:4]
        np.testing.assert_array_equal(f[4], p[4])
