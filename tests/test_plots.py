import matplotlib

matplotlib.use("Agg")

from course_utils import plots  # noqa: E402
from course_utils.train import History  # noqa: E402


def history(offset):
    h = History(step=[1, 2, 3], loss=[3.0 + offset, 2.0 + offset, 1.5 + offset], seconds=[0.1, 0.2, 0.3])
    h.valid_step, h.valid_seconds, h.valid = [3], [0.3], [{"nll": 1.6 + offset}]
    return h


def test_compare_learning_curves_draws_every_run_on_both_axes_with_one_legend():
    fig = plots.compare_learning_curves({"gru": history(0), "lstm": history(0.5)}, {"gru": "tab:blue"},
                                        valid_metric="nll", ylabel="nats", baseline=("one Gaussian", 4.0),
                                        title="Speech", ylim_top=5.0)
    left, right = fig.axes
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "gru train", "gru valid", "lstm train", "lstm valid", "one Gaussian"]
    assert left.get_title() == "Speech: against updates" and right.get_title() == "against seconds of training"
    assert list(right.lines[0].get_xdata()) == [0.1, 0.2, 0.3] and left.get_ylim()[1] == 5.0
    assert left.get_legend() is None  # one legend for the figure, none covering a panel
