import numpy as np
import pytest

from course_utils.handwriting import strokes


def two_strokes():
    return [np.array([[0, 0], [1, 0], [1, 2]]), np.array([[5, 5], [6, 4]])]


def test_stroke_list_roundtrip():
    offsets = strokes.from_stroke_list(two_strokes())
    assert offsets.shape == (5, 3) and offsets.dtype == np.float32
    np.testing.assert_array_equal(offsets[:, 2], [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(offsets[3, :2], [4, 3])  # the pen-up jump to the second stroke
    back = strokes.to_stroke_list(offsets)
    for got, want in zip(back, two_strokes()):
        np.testing.assert_allclose(got, want)


def test_points_are_cumulative_offsets():
    offsets = strokes.from_stroke_list(two_strokes())
    points, eos = strokes.to_points(offsets)
    np.testing.assert_allclose(points[-1], [6, 4])
    assert eos.sum() == 2


def test_scale_roundtrip_and_unit_std():
    rng = np.random.default_rng(0)
    seqs = [np.column_stack([rng.normal(2, 3, 50), rng.normal(0, 0.5, 50), rng.integers(0, 2, 50)]) for _ in range(4)]
    scale = strokes.OffsetScale.fit(seqs)
    scaled = np.concatenate([scale.apply(s) for s in seqs])
    np.testing.assert_allclose(scaled[:, :2].std(0), [1, 1], rtol=1e-4)
    np.testing.assert_allclose(scale.invert(scale.apply(seqs[0])), seqs[0], rtol=1e-5)


def test_clip_jumps_limits_length_and_keeps_direction():
    offsets = np.array([[0, 0, 0], [30, 40, 0], [1, 1, 1]], dtype=np.float32)
    clipped = strokes.clip_jumps(offsets, 10)
    np.testing.assert_allclose(clipped[1, :2], [6, 8], rtol=1e-5)
    np.testing.assert_array_equal(clipped[2], offsets[2])


def test_bad_shapes_and_flags_are_explained():
    with pytest.raises(ValueError, match=r"\(T, 3\)"):
        strokes.to_points(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        strokes.to_points(np.array([[0, 0, 0.5]]))
    with pytest.raises(ValueError, match="empty"):
        strokes.from_stroke_list([[], []])


def test_draw_makes_one_line_per_stroke():
    ax = strokes.draw(strokes.from_stroke_list(two_strokes()))
    assert len(ax.lines) == 2


def test_svg_export_has_a_path_per_stroke(tmp_path):
    import xml.etree.ElementTree as ET

    offsets = strokes.from_stroke_list([[[0, 0], [1, 1], [2, 0]], [[3, 0], [3, 2]]])
    svg = strokes.to_svg(offsets, tmp_path / "line.svg", height=50)
    root = ET.fromstring((tmp_path / "line.svg").read_text())
    paths = root.findall(".//{http://www.w3.org/2000/svg}path")
    assert svg == (tmp_path / "line.svg").read_text() and len(paths) == 2 and root.get("height") == "50"
    assert paths[1].get("d").startswith("M ") and paths[1].get("d").count("L") == 1
