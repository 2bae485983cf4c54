import numpy as np
import pytest

from course_utils.handwriting import pad, recognizer, strokes
from course_utils.handwriting.text_sources import held_out_set
from course_utils.handwriting.synthetic import densify


def test_pad_flips_scales_and_resamples():
    line = [[(10, 100), (10, 60), (30, 60)], [(50, 100)]]  # up, then right; then a dot
    off = pad.pad_offsets(line)
    path = np.concatenate([densify(s, 0.01) for s in strokes.to_stroke_list(off) if len(s)])
    assert path[:, 1].std() == pytest.approx(pad.LINE_HEIGHT, rel=0.05)  # the size, measured along the pen path
    first = strokes.to_stroke_list(off)[0]
    assert first[-1, 1] > first[0, 1]  # drawn towards the top of the canvas: y grows
    assert off[:, 2].sum() == 2 and len(first) > 10  # two strokes, the first resampled along its path
    steps = np.linalg.norm(np.diff(first, axis=0), axis=1)
    assert steps.max() < 2 * pad.PEN_SPEED


def test_lines_from_the_pad_read_back_like_the_tablet_lines():
    reader = recognizer.load_recognizer()
    lines = held_out_set(40)
    texts, tablet = [ln["text"] for ln in lines], [ln["strokes"] for ln in lines]
    assert recognizer.character_error_rate(texts, reader.read(tablet)) <= 0.01  # the floor
    rng = np.random.default_rng(0)
    for pixels_per_unit in (1.5, 8.0):  # a small and a large hand on the canvas
        drawn = [pad.pad_offsets(pad.simulate_mouse(o, rng, pixels_per_unit=pixels_per_unit)) for o in tablet]
        # a mouse event every 1 to 3 tablet points, about a quarter of a letter apart
        assert recognizer.character_error_rate(texts, reader.read(drawn)) <= 0.02  # measured: 0.014 and 0.013


def test_an_empty_or_flat_pad_is_explained():
    with pytest.raises(ValueError, match="empty"):
        pad.pad_offsets([])
    with pytest.raises(ValueError, match="no height"):
        pad.pad_offsets([[(10, 50), (90, 50)]])
    with pytest.raises(ValueError, match="finite"):
        pad.pad_offsets([[(10, 50), (float("nan"), 20)]])


def test_drawing_pad_records_strokes_between_press_and_release():
    p = pad.DrawingPad(width=400, height=120)
    p._move(5, 5)  # moving without pressing draws nothing
    p._start(10, 80), p._move(20, 40), p._move(30, 80), p._end(30, 80)
    p._move(50, 50)
    p._start(60, 70), p._move(70, 40), p._end(70, 40)
    assert p.strokes == [[(10, 80), (20, 40), (30, 80)], [(60, 70), (70, 40)]]
    assert p.offsets()[:, 2].sum() == 2
    p.clear()
    assert p.strokes == []
    with pytest.raises(ValueError, match="empty"):
        p.offsets()


def test_simulated_mouse_keeps_stroke_ends_and_flips_y():
    line = strokes.from_stroke_list([np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]), np.array([[5.0, 0.0]])])
    events = pad.simulate_mouse(line, np.random.default_rng(0), pixels_per_unit=10.0, origin=(0.0, 100.0))
    assert len(events) == 2 and events[0][0] == (0.0, 100.0) and events[0][-1] == (30.0, 70.0)
    assert events[1] == [(50.0, 100.0)]
    with pytest.raises(ValueError, match="max_gap"):
        pad.simulate_mouse(line, np.random.default_rng(0), max_gap=0)
