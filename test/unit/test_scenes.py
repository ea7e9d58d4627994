"""Synthetic scenes: the ground truth the other tests rely on must itself be right."""

from __future__ import annotations

import numpy as np

from picosam2_ros.testing.scenes import SceneObject, random_scene, render_scene


def test_render_scene_masks_are_visible_pixels() -> None:
    objs = [
        SceneObject("rect", (200, 0, 0), 10, 10, 40, 20),
        SceneObject("rect", (0, 200, 0), 30, 15, 10, 30),  # covers part of the first
    ]
    image, (first, second) = render_scene(100, 60, objs)
    assert image.shape == (60, 100, 3)
    assert second.sum() == 300 and first.sum() == 800 - 15 * 10  # rows 15..30 x cols 30..40 hidden
    assert not (first & second).any()
    assert (image[first] == (200, 0, 0)).all() and (image[second] == (0, 200, 0)).all()
    assert (image[~(first | second)] == (30, 30, 30)).all()


def test_l_shape_is_asymmetric() -> None:
    _, (mask,) = render_scene(80, 80, [SceneObject("L", (1, 2, 3), 10, 10, 30, 45)])
    assert not np.array_equal(mask, mask[:, ::-1]) and not np.array_equal(mask, mask[::-1])
    assert mask[54, 39] and mask[10, 10] and not mask[10, 39]


def test_random_scene_objects_separated_distinct_and_not_square() -> None:
    image, objs, masks = random_scene(640, 480, 8, seed=4)
    assert len(objs) == len(masks) == 8
    assert len({o.colour for o in objs}) == 8
    assert all(o.width != o.height for o in objs)
    for i, a in enumerate(objs):
        assert a.x >= 48 and a.y >= 48 and a.x + a.width <= 592 and a.y + a.height <= 432
        for b in objs[i + 1 :]:
            apart_x = a.x + a.width + 12 <= b.x or b.x + b.width + 12 <= a.x
            apart_y = a.y + a.height + 12 <= b.y or b.y + b.height + 12 <= a.y
            assert apart_x or apart_y
    for o, m in zip(objs, masks, strict=True):
        assert m.any() and (image[m] == o.colour).all()
    again, _, _ = random_scene(640, 480, 8, seed=4)
    np.testing.assert_array_equal(image, again)


def test_noise_is_seeded() -> None:
    objs = [SceneObject("ellipse", (200, 100, 50), 5, 5, 30, 12)]
    a, _ = render_scene(50, 30, objs, noise=5.0, seed=1)
    b, _ = render_scene(50, 30, objs, noise=5.0, seed=1)
    c, _ = render_scene(50, 30, objs, noise=5.0, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
