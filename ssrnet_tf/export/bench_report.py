"""What ``ssrnet-tf bench`` shows: a summary table, the full grid, a plot.

The summary has one row per model file in the setting that matters for a
phone or a server answering one request at a time: batch 1, one thread,
XNNPACK on (Keras ``predict_on_batch`` rows as they are). Speed-ups are
against the published SSR-Net graph converted as it was (float32, Keras
``Flatten``) when it is in the set, else against the first file. The full
grid (every thread count, XNNPACK on and off, every batch) is printed with
``--full`` and always written to ``benchmark.json``.
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
import re
from typing import List, Optional, Sequence

from ssrnet_tf.export.benchmark import BenchmarkRow
from ssrnet_tf.utils.atomic import atomic_write_bytes

#: File name of the published graph's float32 conversion (the speed-up baseline).
BASELINE_NAME = "published_graph_float32.tflite"

#: A row this much slower than the same file with one thread is flagged in the full grid.
SLOWDOWN_FLAG = 2.0


@dataclasses.dataclass
class SummaryRow:
    """One model file at batch 1, the fewest threads, XNNPACK on."""

    file: str
    engine: str
    size_kib: float
    p50_ms: float
    p90_ms: float
    speedup: Optional[float]
    xnnpack: str


def _short_delegation(text: str) -> str:
    """``"84/108 nodes in 2 partition(s); fallback: ..."`` -> ``"84/108 (2 parts)"``."""
    match = re.match(r"(\d+)/(\d+) nodes in (\d+) partition", text or "")
    if not match:
        return "-"
    done, total, parts = match.groups()
    return f"{done}/{total}" + ("" if parts == "1" else f" ({parts} parts)")


def summary_rows(rows: Sequence[BenchmarkRow]) -> List[SummaryRow]:
    """One :class:`SummaryRow` per file, in the order of ``rows``."""
    if not rows:
        return []
    threads = min((r.threads for r in rows if r.threads is not None), default=None)
    batch = min(r.batch for r in rows)
    chosen = [r for r in rows if r.batch == batch and (r.engine == "keras" or (r.threads == threads and r.xnnpack))]
    tflite = [r for r in chosen if r.engine == "litert"]
    baseline = next((r for r in tflite if pathlib.Path(r.model).name == BASELINE_NAME), tflite[0] if tflite else None)
    return [
        SummaryRow(
            file=pathlib.Path(r.model).name, engine=r.engine, size_kib=r.size_kib, p50_ms=r.p50_ms, p90_ms=r.p90_ms,
            speedup=(baseline.p50_ms / r.p50_ms) if baseline and r.p50_ms > 0 else None,
            xnnpack=_short_delegation(r.delegation) if r.engine == "litert" else "-",
        )
        for r in chosen
    ]


def baseline_name(rows: Sequence[BenchmarkRow]) -> str:
    """The file the speed-ups are measured against."""
    names = [pathlib.Path(r.model).name for r in rows if r.engine == "litert"]
    return BASELINE_NAME if BASELINE_NAME in names else (names[0] if names else "-")


def _table(titles, lines, left=(0,)) -> str:
    widths = [max(len(t), *(len(line[i]) for line in lines)) if lines else len(t) for i, t in enumerate(titles)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([fmt(titles), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines])


def format_summary(summary: Sequence[SummaryRow]) -> str:
    """The summary as a text table (at most 100 columns for SSR-Net's files)."""
    lines = []
    for row in summary:
        name = row.file if row.engine == "litert" else f"{row.file} (Keras)"
        lines.append((name, f"{row.size_kib:.1f}", f"{row.p50_ms:.3f}", f"{row.p90_ms:.3f}",
                      "-" if row.speedup is None else f"{row.speedup:.2f}x", row.xnnpack))
    return _table(("file", "KiB", "p50 ms", "p90 ms", "speed-up", "XNNPACK nodes"), lines, left=(0, 5))


def slow_with_threads(rows: Sequence[BenchmarkRow]) -> List[int]:
    """Indices of rows over :data:`SLOWDOWN_FLAG` times slower than one thread.

    They are real measurements, but of thread contention rather than of the
    model: LiteRT's builtin (non-XNNPACK) kernels split small ops across
    threads that busy-wait for each other, which costs far more than the op
    itself when the cores are shared with other work or there are more
    threads than free cores.
    """
    single = {(r.model, r.engine, r.xnnpack, r.batch): r.p50_ms for r in rows if r.threads == 1}
    return [
        index for index, r in enumerate(rows)
        if r.threads not in (None, 1) and single.get((r.model, r.engine, r.xnnpack, r.batch))
        and r.p50_ms > SLOWDOWN_FLAG * single[(r.model, r.engine, r.xnnpack, r.batch)]
    ]


def full_grid_note(rows: Sequence[BenchmarkRow], cores: Optional[int]) -> str:
    """The footnote for the rows of :func:`slow_with_threads` (empty if none)."""
    flagged = slow_with_threads(rows)
    if not flagged:
        return ""
    return (f"* {len(flagged)} row(s) over {SLOWDOWN_FLAG:g}x slower than the same file on 1 thread: threads "
            f"waiting for each other, not the model ({cores} logical cores, shared with whatever else runs; "
            f"with XNNPACK off, LiteRT's builtin kernels split tiny ops between threads that busy-wait). "
            f"Compare the 1-thread rows.")


def summary_figure(summary: Sequence[SummaryRow], title: str):
    """The summary plot as a matplotlib figure (``None`` if no ``.tflite`` row).

    Horizontal bars of p50 latency per ``.tflite`` file on a linear axis
    from 0, each labelled with its value and speed-up. Keras
    ``predict_on_batch`` (ten times slower) would squash the bars, so its
    p50 is written under the title instead.
    """
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    keras_rows = [row for row in summary if row.engine == "keras"]
    summary = [row for row in summary if row.engine == "litert"]
    if not summary:
        return None
    if keras_rows:
        title += "\n" + ", ".join(f"{row.file}: Keras predict_on_batch {row.p50_ms:.2f} ms (not drawn)" for row in keras_rows)
    figure, axis = plt.subplots(figsize=(9, 0.45 * len(summary) + 2.1))
    values = [row.p50_ms for row in summary]
    colours = ["#c07030" if row.file == BASELINE_NAME else "#3a8f6a" for row in summary]
    bars = axis.barh([row.file for row in summary], values, color=colours)
    labels = [f"{row.p50_ms:.3f} ms" + ("" if row.speedup is None else f"  ({row.speedup:.2f}x)") for row in summary]
    axis.bar_label(bars, labels=labels, padding=3, fontsize=8)
    axis.set_xlim(0, max(values) * 1.35)
    baseline = next((row.file for row in summary if row.speedup is not None and abs(row.speedup - 1) < 1e-9), "-")
    axis.set_xlabel(f"p50 latency per face (ms); in brackets: speed-up vs {baseline}")
    axis.invert_yaxis()
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def plot_summary(summary: Sequence[SummaryRow], path: pathlib.Path, title: str) -> Optional[pathlib.Path]:
    """Writes :func:`summary_figure` as a PNG; returns ``path`` (``None``: nothing to plot)."""
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    figure = summary_figure(summary, title)
    if figure is None:
        return None
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return path
