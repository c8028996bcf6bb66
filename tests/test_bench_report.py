"""What `ssrnet-tf bench` shows: summary table, full-grid flags, plot."""

import pytest

from ssrnet_tf.export import bench_report
from ssrnet_tf.export.benchmark import BenchmarkRow

FILES = ("published_graph_float32.tflite", "ssrnet_none.tflite", "ssrnet_float16.tflite", "ssrnet_dynamic.tflite",
         "ssrnet_int8.tflite", "ssrnet_int8_int8-input.tflite")
P50 = {name: p50 for name, p50 in zip(FILES, (0.41, 0.42, 0.41, 0.25, 0.21, 0.2))}


def _grid():
    rows = []
    for name in FILES:
        for xnnpack in (True, False):
            for threads in (1, 2, 4):
                for batch in (1, 32):
                    p50 = P50[name] * (1 if xnnpack else 3)
                    if name.startswith("ssrnet_int8") and not xnnpack and threads > 1:
                        p50 = 26.6 * threads / 2  # the contention rows of the issue
                    delegation = "84/108 nodes in 2 partition(s); fallback: PACK" if name.startswith("published") \
                        else "97/97 nodes in 1 partition(s)"
                    rows.append(BenchmarkRow(f"runs/bench/{name}", "litert", threads, xnnpack, batch, p50, p50 * 1.2,
                                             p50 * 2, 1000 / p50, 60.0, 40915, 50.0, delegation if xnnpack else "off"))
    for batch in (1, 32):
        rows.append(BenchmarkRow("runs/bench/ssrnet.keras", "keras", None, None, batch, 5.0, 6.0, 7.0, 200.0, 420.0,
                                 40915, 700.0))
    return rows


def test_summary_is_one_short_row_per_file_against_the_published_graph():
    rows = _grid()
    summary = bench_report.summary_rows(rows)
    assert [row.file for row in summary] == [*FILES, "ssrnet.keras"]
    assert summary[0].speedup == pytest.approx(1.0) and summary[4].speedup == pytest.approx(0.41 / 0.21)
    assert summary[0].xnnpack == "84/108 (2 parts)" and summary[4].xnnpack == "97/97"
    table = bench_report.format_summary(summary).splitlines()
    assert len(table) <= 12 and max(len(line) for line in table) <= 100
    assert len(rows) == 74  # the full grid stays behind --full


def test_contention_rows_are_flagged_and_explained():
    rows = _grid()
    flagged = bench_report.slow_with_threads(rows)
    assert flagged and all(not rows[i].xnnpack and rows[i].threads > 1 for i in flagged)
    assert "not the model" in bench_report.full_grid_note(rows, 2)
    assert bench_report.full_grid_note([r for r in rows if r.xnnpack in (True, None)], 2) == ""


def test_plot_has_a_linear_axis_from_zero_values_and_a_title(tmp_path):
    summary = bench_report.summary_rows(_grid())
    figure = bench_report.summary_figure(summary, "AMD EPYC | batch 1, 1 thread, XNNPACK on | RANDOM weights")
    axis = figure.axes[0]
    assert axis.get_xscale() == "linear" and axis.get_xlim()[0] == 0
    labels = [text.get_text() for text in axis.texts]
    assert "0.210 ms  (1.95x)" in labels and len(labels) == len(FILES)
    assert "RANDOM weights" in axis.get_title() and "Keras predict_on_batch 5.00 ms" in axis.get_title()
    assert bench_report.plot_summary(summary, tmp_path / "b.png", "t").stat().st_size > 10_000
