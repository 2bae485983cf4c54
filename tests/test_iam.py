import numpy as np
import pytest

from course_utils.handwriting import iam
from course_utils.text import DatasetNotFoundError

HEADER = """<?xml version="1.0" encoding="ISO-8859-1"?>
<WhiteboardCaptureSession>
  <WhiteboardDescription>
    <SensorLocation corner="top_left"/>
    <DiagonallyOppositeCoords x="6512" y="1376"/>
    <VerticallyOppositeCoords x="966" y="1376"/>
    <HorizontallyOppositeCoords x="6512" y="787"/>
  </WhiteboardDescription>
  <StrokeSet>
"""
FOOTER = """  </StrokeSet>
</WhiteboardCaptureSession>
"""

# Line 1: two strokes (3 + 2 points); line 2: one stroke of 2 points.
LINE_1 = [[(1073, 1058), (1072, 1085), (1080, 1100)], [(1200, 1050), (1210, 1060)]]
LINE_2 = [[(1000, 1200), (1020, 1210)]]
TEXTS = ["A MOVE to stop Mr. Gaitskell from", "nominating any more Labour"]


def stroke_xml(strokes) -> str:
    body = ""
    for stroke in strokes:
        body += '    <Stroke colour="black" start_time="769.05" end_time="769.64">\n'
        for n, (x, y) in enumerate(stroke):
            body += f'      <Point x="{x}" y="{y}" time="{769.05 + 0.02 * n:.2f}"/>\n'
        body += "    </Stroke>\n"
    return HEADER + body + FOOTER


def ascii_txt(texts) -> str:
    ocr = "\n".join(t.replace(".", " .") for t in texts)
    return f"OCR:\n\n{ocr}\n\nCSR:\n\n" + "\n".join(texts) + "\n"


def write_form(root, form="a01-000u", lines=(LINE_1, LINE_2), texts=TEXTS, ascii=True):
    """Write a form in the IAM-OnDB layout: one XML per line under lineStrokes/, the text under ascii/."""
    prefix, number = form[:3], form[:7]
    strokes_dir = root / "lineStrokes" / prefix / number
    strokes_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, line in enumerate(lines, start=1):
        paths.append(strokes_dir / f"{form}-{k:02d}.xml")
        paths[-1].write_text(stroke_xml(line), encoding="latin-1")
    ascii_dir = root / "ascii" / prefix / number
    ascii_dir.mkdir(parents=True, exist_ok=True)
    if ascii:
        (ascii_dir / f"{form}.txt").write_text(ascii_txt(texts), encoding="latin-1")
    return paths


def test_read_stroke_file_points_and_flipped_y(tmp_path):
    path = write_form(tmp_path)[0]
    strokes = iam.read_stroke_file(path)
    assert [s.shape for s in strokes] == [(3, 2), (2, 2)]
    assert strokes[0].dtype == np.float32
    np.testing.assert_array_equal(strokes[0][1], [1072, -1085])


def test_load_pairs_texts_and_flags_stroke_ends(tmp_path):
    write_form(tmp_path)
    lines = iam.load_iam(tmp_path)
    assert [(line.id, line.text) for line in lines] == [("a01-000u-01", TEXTS[0]), ("a01-000u-02", TEXTS[1])]
    first = lines[0].strokes
    assert first.shape == (5, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first[:, 2], [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(first[1, :2], [-1, -27])  # y points up: the pen moved down the tablet


def test_root_from_environment(tmp_path, monkeypatch):
    write_form(tmp_path)
    monkeypatch.setenv(iam.IAM_ENV, str(tmp_path))
    assert iam.iam_root() == tmp_path
    assert len(iam.load_iam()) == 2


def test_missing_database_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(iam.IAM_ENV, raising=False)
    with pytest.raises(DatasetNotFoundError, match="IAM_ONDB_DIR"):
        iam.iam_root()
    monkeypatch.setenv(iam.IAM_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError, match="IAM_ONDB_DIR") as info:
        iam.load_iam()
    assert "lineStrokes-all.tar.gz" in str(info.value) and "registration" in str(info.value)
    (tmp_path / "lineStrokes").mkdir()
    with pytest.raises(DatasetNotFoundError, match="ascii/"):
        iam.iam_root(tmp_path)


def test_truncated_xml(tmp_path):
    path = write_form(tmp_path)[0]
    path.write_text(path.read_text()[:300])
    with pytest.raises(iam.IAMFormatError, match=path.name):
        iam.read_stroke_file(path)


def test_point_without_y_and_non_numeric_x(tmp_path):
    path = write_form(tmp_path)[0]
    text = path.read_text()
    path.write_text(text.replace(' y="1085"', "", 1))
    with pytest.raises(iam.IAMFormatError, match=f"{path.name}.*Point without y"):
        iam.read_stroke_file(path)
    path.write_text(text.replace('x="1072"', 'x="abc"', 1))
    with pytest.raises(iam.IAMFormatError, match=f"{path.name}.*x='abc' is not a number"):
        iam.load_iam(tmp_path)


def test_missing_stroke_set(tmp_path):
    path = write_form(tmp_path)[0]
    path.write_text('<?xml version="1.0"?>\n<WhiteboardCaptureSession></WhiteboardCaptureSession>\n')
    with pytest.raises(iam.IAMFormatError, match=f"{path.name}.*no <StrokeSet>"):
        iam.read_stroke_file(path)


def test_ascii_without_csr(tmp_path):
    write_form(tmp_path)
    path = tmp_path / "ascii" / "a01" / "a01-000" / "a01-000u.txt"
    path.write_text("OCR:\n\nA MOVE to stop\n")
    with pytest.raises(iam.IAMFormatError, match=f"{path.name}.*no CSR: section"):
        iam.load_iam(tmp_path)


def test_transcription_with_too_few_lines(tmp_path):
    write_form(tmp_path, texts=TEXTS[:1])
    with pytest.raises(iam.IAMFormatError, match="a01-000u.txt.*line 2 missing.*has 1 lines"):
        iam.load_iam(tmp_path)


def test_outlier_jump_clipped_normal_offsets_kept():
    strokes = [np.array([[0, 0], [3, 4]]), np.array([[5000, 4]]), np.array([[5200, 4]])]
    offsets = iam.preprocess(strokes)
    np.testing.assert_allclose(offsets[:, :2], [[0, 0], [3, 4], [iam.MAX_JUMP, 0], [200, 0]])
    np.testing.assert_array_equal(offsets[:, 2], [0, 1, 1, 1])
    assert np.linalg.norm(iam.preprocess(strokes, max_jump=50)[2, :2]) == pytest.approx(50)


def test_duplicate_points_dropped():
    strokes = [np.array([[0, 0], [0, 0], [1, 1], [1, 1], [1, 1]]), np.array([[1, 1], [2, 2]])]
    offsets = iam.preprocess(strokes)
    # Kept: the first point, (1, 1), the stroke's last point (its flag), and the next stroke's pen-down.
    np.testing.assert_array_equal(offsets, [[0, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0], [1, 1, 1]])


def test_limit(tmp_path):
    write_form(tmp_path)
    write_form(tmp_path, form="a01-001w")
    assert len(iam.load_iam(tmp_path)) == 4
    assert [line.id for line in iam.load_iam(tmp_path, limit=3)] == ["a01-000u-01", "a01-000u-02", "a01-001w-01"]
    assert iam.load_iam(tmp_path, limit=0) == []


def test_missing_ascii_file_warns_and_skips(tmp_path):
    write_form(tmp_path, form="a01-000u", ascii=False)
    write_form(tmp_path, form="a01-001w")
    with pytest.warns(UserWarning) as record:
        lines = iam.load_iam(tmp_path)
    assert ["a01-000u-01.xml" in str(w.message) for w in record] == [True, False]
    assert "a01-000u-02.xml" in str(record[1].message)
    assert [line.id for line in lines] == ["a01-001w-01", "a01-001w-02"]
