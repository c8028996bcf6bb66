"""CPU latency benchmark of ``.tflite`` and ``.keras`` age models.

Each model file is measured in a fresh Python process, so that the peak
memory (``ru_maxrss``) is the model's own and two runtimes never share one
process. Inside it: warm-up runs, then timed runs at batch 1 and batch 32;
per-face latency percentiles (p50/p90/p99) and throughput. ``.tflite``
files run in the LiteRT interpreter with every requested thread count, with
the XNNPACK delegate on and off; ``.keras`` files run with
``Model.predict_on_batch`` as the baseline.

Run ``python -m ssrnet_tf.export.benchmark --worker MODEL`` to measure one
file and print JSON; :func:`benchmark_files` does that for many.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np


@dataclasses.dataclass
class BenchmarkRow:
    """One (model, engine, threads, XNNPACK, batch) measurement."""

    model: str
    engine: str
    threads: Optional[int]
    xnnpack: Optional[bool]
    batch: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    faces_per_s: float
    size_kib: float
    params: Optional[int]
    peak_rss_mib: float
    delegation: str = ""


def cpu_name() -> str:
    """The CPU model name (Linux ``/proc/cpuinfo``, else ``platform``)."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _percentiles(seconds: List[float], batch: int):
    per_face_ms = np.asarray(seconds) * 1000.0 / batch
    p50, p90, p99 = np.percentile(per_face_ms, [50, 90, 99])
    return float(p50), float(p90), float(p99), float(batch / np.median(seconds))


def _time(fn, runs: int, warmup: int) -> List[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (its own high-water mark where Linux has one)."""
    # Linux keeps ru_maxrss across execve (a worker would report its parent's
    # peak), so read this process's own high-water mark where there is one.
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _faces(shape, batch: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (batch, *shape)).astype(np.float32)


def measure_file(
    path: str,
    threads: Sequence[int] = (1, 2, 4),
    batches: Sequence[int] = (1, 32),
    runs: int = 200,
    warmup: int = 20,
    xnnpack_modes: Sequence[bool] = (True, False),
) -> List[BenchmarkRow]:
    """Measures one model file in this process (see module docstring)."""
    size_kib = os.path.getsize(path) / 1024.0
    rows = []
    if path.endswith(".tflite"):
        from ssrnet_tf.export.tflite import TFLiteModel  # pylint: disable=import-outside-toplevel

        for use_xnnpack in xnnpack_modes:
            for count in threads:
                runner = TFLiteModel(path, num_threads=count, use_xnnpack=use_xnnpack)
                shape = runner.input_shape[1:]
                delegation = runner.delegation().summary() if use_xnnpack else "off"
                for batch in batches:
                    faces = _faces(shape, batch)
                    faces = runner._to_input_type(faces)  # pylint: disable=protected-access
                    runner.predict(faces)
                    batch_runs = max(10, runs // batch)
                    stats = _percentiles(_time(lambda: runner.predict(faces), batch_runs, warmup), batch)
                    rows.append(BenchmarkRow(path, "litert", count, use_xnnpack, batch, *stats, size_kib, None, 0.0, delegation))
    elif path.endswith(".keras"):
        from ssrnet_tf.model_spec import load_keras  # pylint: disable=import-outside-toplevel

        model, _ = load_keras(path)
        shape = tuple(model.input_shape[1:])
        for batch in batches:
            faces = _faces(shape, batch)
            model.predict_on_batch(faces)
            batch_runs = max(10, runs // (4 * batch))
            stats = _percentiles(_time(lambda: model.predict_on_batch(faces), batch_runs, max(3, warmup // 4)), batch)
            rows.append(BenchmarkRow(path, "keras", None, None, batch, *stats, size_kib, model.count_params(), 0.0))
    else:
        raise ValueError(f"{path}: expected a .tflite or .keras file.")
    peak = peak_rss_mib()
    for row in rows:
        row.peak_rss_mib = peak
    return rows


def benchmark_files(paths: Sequence[str], params: Optional[Dict[str, int]] = None, **options) -> List[BenchmarkRow]:
    """Measures each file in its own subprocess (fresh peak memory).

    Args:
        paths: ``.tflite`` / ``.keras`` files.
        params: Optional parameter counts by path (for ``.tflite`` rows).
        **options: ``threads``, ``batches``, ``runs``, ``warmup``,
            ``xnnpack_modes`` of :func:`measure_file`.

    Returns:
        All rows, in the order of ``paths``.

    Raises:
        RuntimeError: If a worker fails (its stderr tail is included).
    """
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel

    rows = []
    for path in tqdm(list(paths), desc="benchmark", unit="model"):
        command = [sys.executable, "-m", "ssrnet_tf.export.benchmark", "--worker", str(path), "--options", json.dumps(options)]
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if result.returncode != 0:
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()] or ["(no message)"]
            raise RuntimeError(f"benchmark of {path} failed in its worker process: {lines[-1]}")
        for data in json.loads(result.stdout.strip().splitlines()[-1]):
            row = BenchmarkRow(**data)
            if row.params is None and params:
                row.params = params.get(str(path))
            rows.append(row)
    return rows


def header(threads: Sequence[int]) -> str:
    """CPU, runtime versions and thread counts, for the top of a report."""
    versions = []
    for module in ("ai_edge_litert", "tensorflow", "keras"):
        try:
            from importlib import metadata  # pylint: disable=import-outside-toplevel

            name = {"ai_edge_litert": "ai-edge-litert"}.get(module, module)
            versions.append(f"{module} {metadata.version(name)}")
        except Exception:  # pylint: disable=broad-except
            continue
    return (
        f"CPU: {cpu_name()} ({os.cpu_count()} logical cores) | {platform.system()} {platform.machine()} | "
        f"Python {platform.python_version()} | {', '.join(versions)} | threads tried: {', '.join(map(str, threads))}"
    )


def format_table(rows: Sequence[BenchmarkRow], flagged: Sequence[int] = ()) -> str:
    """A fixed-width text table of the rows; ``flagged`` rows get a ``*`` after p50."""
    titles = ("model", "engine", "thr", "xnnpack", "batch", "p50 ms", "p90 ms", "p99 ms", "faces/s", "KiB", "params", "peak MiB", "XNNPACK nodes")
    lines = []
    for index, row in enumerate(rows):
        lines.append((
            pathlib.Path(row.model).name, row.engine, "-" if row.threads is None else str(row.threads),
            "-" if row.xnnpack is None else ("on" if row.xnnpack else "off"), str(row.batch),
            f"{row.p50_ms:.3f}" + ("*" if index in flagged else ""), f"{row.p90_ms:.3f}", f"{row.p99_ms:.3f}", f"{row.faces_per_s:,.0f}",
            f"{row.size_kib:.1f}", "-" if row.params is None else f"{row.params:,}", f"{row.peak_rss_mib:.0f}", row.delegation,
        ))
    widths = [max(len(t), *(len(line[i]) for line in lines)) if lines else len(t) for i, t in enumerate(titles)]
    def fmt(cells):
        return "  ".join(c.ljust(w) if i in (0, 1, 12) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(titles), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines])


def _worker(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", required=True)
    parser.add_argument("--options", default="{}")
    args = parser.parse_args(argv)
    rows = measure_file(args.worker, **json.loads(args.options))
    print(json.dumps([dataclasses.asdict(row) for row in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(_worker())
