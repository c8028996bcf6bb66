"""Runtime compatibility check: the same ``.tflite`` on an older runtime.

Apps bundle the TFLite runtime they were built with, often a version or two
behind this project's LiteRT. A file must either run there with the same
ages or be refused when it is loaded; a file that loads and computes other
ages is the one failure a phone user cannot see. :func:`check_files` runs
``.tflite`` files on real faces in LiteRT (this environment) and in another
runtime installed in a side environment (by default ``tflite-runtime``
2.14.0, the last ``tflite-runtime`` wheel, whose Python needs
``numpy<2``) and compares them.

Each file is run, face by face, by :mod:`ssrnet_tf.export.runtime_worker`
in a subprocess, as an app would load it (default op resolver). LiteRT runs
it twice: with its default XNNPACK delegate and with the reference kernels
only. int8 kernels round differently between the two (measured on the
published SSR-Net: up to 0.74 years on one of 32 faces, 0.11 on average,
where the float files agree to 1e-5), and an older runtime may run either
(TFLite 2.14 runs SSR-Net's int8 graph on the reference kernels), so a file
agrees when the other runtime's ages are within the tolerance of either
LiteRT run: :data:`FLOAT_TOLERANCE` years for float files (float32,
float16, and weight-only dynamic range, which stores int8 weights but
computes in float), :data:`INT8_TOLERANCE` for files that compute in int8
(full-integer, QAT, and the opt-in hybrid dynamic range, whose activations
are quantized on the fly), on every face.

A refusal at load time is the right answer exactly when the file declares a
minimum runtime newer than the runtime
(:func:`ssrnet_tf.export.flatbuffer.min_runtime_version`); a refusal of a
file that declares an older one is a failure, as is any disagreement.

Example:
    >>> report = check_files(["ssrnet_int8.tflite"], faces,
    ...                      side_python=".venv-tflite214/bin/python")
    >>> print(report.table()); assert report.ok
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

PathLike = Union[str, os.PathLike]

#: Largest per-face age difference (years) allowed for float files.
FLOAT_TOLERANCE = 0.05
#: Largest per-face age difference (years) allowed for int8 files.
INT8_TOLERANCE = 0.1
#: The runtime an app most likely still bundles: the last ``tflite-runtime``.
SIDE_RUNTIME_REQUIREMENTS = ("tflite-runtime==2.14.0", "numpy<2")
#: Environment variable naming the side environment's Python.
SIDE_PYTHON_ENV = "SSRNET_TF_TFLITE214_PYTHON"

_WORKER = pathlib.Path(__file__).with_name("runtime_worker.py")


@dataclasses.dataclass
class RuntimeRun:
    """One runtime's answer for one file.

    Attributes:
        runtime: ``"ai_edge_litert"``, ``"tflite_runtime"`` or ``"tensorflow"``.
        version: Its package version.
        ages: Per-face ages, or ``None`` when the runtime refused the file.
        error: The runtime's message when it refused the file.
    """

    runtime: str
    version: str
    ages: Optional[np.ndarray] = None
    error: Optional[str] = None


@dataclasses.dataclass
class FileCheck:
    """The verdict for one file.

    Attributes:
        path: The ``.tflite`` file.
        kind: ``"float"`` or ``"int8"``.
        min_runtime: The minimum runtime the file declares.
        litert: LiteRT with XNNPACK (the default).
        litert_reference: LiteRT with reference kernels only.
        other: The side runtime.
        difference: Largest per-face difference between the side runtime and
            the closer LiteRT run, when both ran.
        status: ``"agree"``, ``"refused"`` (expected), or ``"FAIL: ..."``.
    """

    path: str
    kind: str
    min_runtime: Optional[str]
    litert: RuntimeRun
    litert_reference: RuntimeRun
    other: RuntimeRun
    difference: Optional[float]
    status: str

    @property
    def ok(self) -> bool:
        """Whether the file agrees or is refused as it declares."""
        return not self.status.startswith("FAIL")

    @property
    def backend_spread(self) -> Optional[float]:
        """Largest per-face difference between LiteRT's own two runs.

        XNNPACK and the reference kernels of the *same* runtime round int8
        differently by at most one quantization step per value; a file whose
        ages move by more than the tolerance under that is fragile on every
        runtime (it amplifies rounding), which no runtime choice fixes.
        """
        if self.litert.ages is None or self.litert_reference.ages is None:
            return None
        return _largest_gap(self.litert, self.litert_reference)


def _largest_gap(first: RuntimeRun, second: RuntimeRun) -> float:
    """Largest per-face age difference (years) between two runs that both ran."""
    return float(np.abs(first.ages - second.ages).max())


def _ages_text(run: RuntimeRun, count: int) -> str:
    if run.ages is None:
        return "refused at load"
    return ", ".join(f"{age:.2f}" for age in run.ages[:count])


@dataclasses.dataclass
class CompatibilityReport:
    """All files' verdicts; :meth:`table` renders them as Markdown."""

    files: List[FileCheck]

    @property
    def ok(self) -> bool:
        """Whether every file agrees or is refused as it declares."""
        return all(check.ok for check in self.files)

    def table(self, faces_shown: int = 3) -> str:
        """A Markdown table: first faces' ages per runtime and the verdict."""
        if not self.files:
            return "(no files)"
        first = self.files[0]
        header = (
            f"| file | min runtime | LiteRT {first.litert.version} | "
            f"{first.other.runtime} {first.other.version} | max diff (years) | "
            "LiteRT XNNPACK vs reference kernels | verdict |"
        )
        lines = [header, "| --- | --- | --- | --- | --- | --- | --- |"]
        for check in self.files:
            difference = "" if check.difference is None else f"{check.difference:.3f}"
            spread = "" if check.backend_spread is None else f"{check.backend_spread:.3f}"
            lines.append(
                f"| {pathlib.Path(check.path).name} | {check.min_runtime or '?'} | "
                f"{_ages_text(check.litert, faces_shown)} | {_ages_text(check.other, faces_shown)} | "
                f"{difference} | {spread} | {check.status} |"
            )
        return "\n".join(lines)


def file_kind(flatbuffer: bytes) -> str:
    """``"int8"`` when the file computes with int8 anywhere, else ``"float"``.

    Full-integer files and the converter's dynamic-range ("hybrid") ones
    count as int8: the latter quantize their activations to int8 on the
    fly, and runtimes round that differently (the published SSR-Net's
    hybrid file: up to 0.050 years between TFLite 2.14 and LiteRT 2.3 on the
    32 reference faces, while its float32 and float16 files agree to 1e-5).
    int8 tensors that only feed ``DEQUANTIZE`` (weight-only files,
    :func:`ssrnet_tf.export.flatbuffer.int8_weight_only`) are storage: such
    a file computes in float and is held to the float tolerance.
    """
    from ssrnet_tf.export import flatbuffer as flatbuffer_lib  # pylint: disable=import-outside-toplevel

    model = flatbuffer_lib.read_model(flatbuffer)
    int8 = _schema_int8()
    dequantize = flatbuffer_lib.builtin_op_indices(model, "DEQUANTIZE")
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            touched = list(operator.outputs) + ([] if operator.opcodeIndex in dequantize else list(operator.inputs))
            if any(index >= 0 and subgraph.tensors[index].type == int8 for index in touched):
                return "int8"
    return "float"


def _schema_int8() -> int:
    from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=import-outside-toplevel

    return schema.TensorType.INT8


def _input_size(flatbuffer: bytes) -> int:
    from ssrnet_tf.export import flatbuffer as flatbuffer_lib  # pylint: disable=import-outside-toplevel

    model = flatbuffer_lib.read_model(flatbuffer)
    return int(model.subgraphs[0].tensors[int(model.subgraphs[0].inputs[0])].shape[1])


def faces_at(faces: np.ndarray, size: int) -> np.ndarray:
    """uint8 BGR faces resized to ``size`` x ``size``, as float32 whole pixel values.

    What an app feeds a model: crops are uint8 images (the face cropper's
    too), so every value is a whole number. Resizing in float would make
    values such as 127.5, and an int8 file's input ``QUANTIZE`` (scale 1)
    rounds such ties differently in TFLite 2.14 and LiteRT 2.3 (half away
    from zero vs. to even): about 1 % of the inputs one step apart, which a
    MobileNet turns into ages up to 2 years apart, while whole-valued
    inputs give bit-identical ages.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    faces = np.clip(np.round(np.asarray(faces, dtype=np.float32)), 0, 255).astype(np.uint8)
    if faces.shape[1] != size or faces.shape[2] != size:
        interpolation = cv2.INTER_AREA if size < faces.shape[1] else cv2.INTER_LINEAR
        faces = np.stack([cv2.resize(face, (size, size), interpolation=interpolation) for face in faces])
    return faces.astype(np.float32)


def run_runtime(
    paths: Sequence[PathLike],
    faces: np.ndarray,
    *,
    python: PathLike = sys.executable,
    runtime: str = "ai_edge_litert",
    xnnpack: bool = True,
    timeout: float = 1800,
) -> Dict[str, RuntimeRun]:
    """Runs files on faces in one runtime (a subprocess), face by face.

    Args:
        paths: ``.tflite`` files taking ``faces``' shape.
        faces: float32 ``(N, H, W, 3)`` raw 0-255 BGR faces.
        python: The interpreter of the environment that has ``runtime``.
        runtime: A key of :data:`ssrnet_tf.export.runtime_worker.RUNTIMES`.
        xnnpack: Whether the default XNNPACK delegate is applied.
        timeout: Seconds before the subprocess is stopped.

    Returns:
        ``{str(path): RuntimeRun}``.

    Raises:
        RuntimeError: If the worker itself fails (e.g. the runtime is not
            installed in that environment), with its error output.
    """
    with tempfile.TemporaryDirectory() as tmp:
        faces_path = pathlib.Path(tmp) / "faces.npy"
        np.save(faces_path, np.asarray(faces, dtype=np.float32))
        command = [str(python), str(_WORKER), "--runtime", runtime, str(faces_path), *map(str, paths)]
        if not xnnpack:
            command.insert(4, "--no-xnnpack")
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{runtime} under {python} failed (exit {result.returncode}):\n{result.stderr.strip()[-2000:]}"
        )
    answer = json.loads(result.stdout)
    runs = {}
    for path, outcome in answer["files"].items():
        ages = np.asarray(outcome["ages"], dtype=np.float64) if "ages" in outcome else None
        runs[path] = RuntimeRun(answer["runtime"], answer["version"], ages, outcome.get("error"))
    return runs


def judge(
    path: str,
    kind: str,
    min_runtime: Optional[str],
    litert: RuntimeRun,
    litert_reference: RuntimeRun,
    other: RuntimeRun,
) -> FileCheck:
    """The verdict for one file from its three runs (see the module docstring)."""
    from ssrnet_tf.export.flatbuffer import runtime_at_least  # pylint: disable=import-outside-toplevel

    tolerance = INT8_TOLERANCE if kind == "int8" else FLOAT_TOLERANCE
    needs_newer = min_runtime is not None and not runtime_at_least(other.version, min_runtime)
    difference = None
    if litert.ages is None or litert_reference.ages is None:
        status = f"FAIL: LiteRT cannot run it ({litert.error or litert_reference.error})"
    elif other.ages is None:
        status = "refused" if needs_newer else f"FAIL: refused, but the file declares runtime {min_runtime}: {other.error}"
    else:
        difference = min(_largest_gap(other, litert), _largest_gap(other, litert_reference))
        if difference <= tolerance:
            status = "agree"
        elif needs_newer:
            status = f"FAIL: loads on {other.version} despite declaring {min_runtime}, and computes other ages"
        else:
            status = f"FAIL: ages differ by up to {difference:.3f} years (> {tolerance})"
            spread = _largest_gap(litert, litert_reference)
            if spread > tolerance:
                status += (f"; LiteRT's own XNNPACK and reference kernels differ by {spread:.3f}: the file "
                           "amplifies int8 rounding (one step per value) on any runtime")
    return FileCheck(path, kind, min_runtime, litert, litert_reference, other, difference, status)


def check_files(
    paths: Sequence[PathLike],
    faces: np.ndarray,
    *,
    side_python: PathLike,
    side_runtime: str = "tflite_runtime",
) -> CompatibilityReport:
    """Runs ``.tflite`` files in LiteRT and in a side runtime, and compares.

    Any ``.tflite`` this project writes can be checked, e.g. the shipped
    models' files. Faces are resized to each file's input size.

    Args:
        paths: ``.tflite`` files (float32 raw 0-255 BGR input, or int8/uint8
            input with its quantization parameters).
        faces: Real raw BGR faces ``(N, H, W, 3)``, e.g.
            ``../shared/reference/ssrnet/inputs_bgr_uint8_64.npy``.
        side_python: Python of the side environment (see
            :func:`create_side_environment`).
        side_runtime: The interpreter package installed there.

    Returns:
        A :class:`CompatibilityReport`.
    """
    from ssrnet_tf.export import flatbuffer as flatbuffer_lib  # pylint: disable=import-outside-toplevel

    contents = {str(path): pathlib.Path(path).read_bytes() for path in paths}
    by_size: Dict[int, List[str]] = {}
    for path, flatbuffer in contents.items():
        by_size.setdefault(_input_size(flatbuffer), []).append(path)
    runs: Dict[str, Dict[str, RuntimeRun]] = {"litert": {}, "reference": {}, "other": {}}
    for size, group in by_size.items():
        sized = faces_at(faces, size)
        runs["litert"].update(run_runtime(group, sized))
        runs["reference"].update(run_runtime(group, sized, xnnpack=False))
        runs["other"].update(run_runtime(group, sized, python=side_python, runtime=side_runtime))
    checks = [
        judge(
            path, file_kind(flatbuffer), flatbuffer_lib.min_runtime_version(flatbuffer),
            runs["litert"][path], runs["reference"][path], runs["other"][path],
        )
        for path, flatbuffer in contents.items()
    ]
    return CompatibilityReport(checks)


def side_python_path(directory: PathLike) -> pathlib.Path:
    """The Python of a venv directory."""
    return pathlib.Path(directory) / "bin" / "python"


def create_side_environment(directory: PathLike, requirements: Sequence[str] = SIDE_RUNTIME_REQUIREMENTS) -> pathlib.Path:
    """Creates (or reuses) a venv holding an older runtime; returns its Python.

    Args:
        directory: Where the venv lives (reused when its Python already
            imports ``tflite_runtime``).
        requirements: pip requirements, by default :data:`SIDE_RUNTIME_REQUIREMENTS`.

    Returns:
        The venv's Python.

    Raises:
        RuntimeError: If the venv or the installation fails (e.g. no wheel
            for this Python or platform, or no network), with pip's message.
    """
    python = side_python_path(directory)
    probe = [str(python), "-c", "import tflite_runtime.interpreter"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    for command in (
        [sys.executable, "-m", "venv", "--clear", str(directory)],
        [str(python), "-m", "pip", "install", "--quiet", *requirements],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{(result.stderr or result.stdout).strip()[-2000:]}")
    return python


#: The reference faces beside the repository (32 aligned 64 px BGR faces).
REFERENCE_FACES = pathlib.Path("../shared/reference/ssrnet/inputs_bgr_uint8_64.npy")
#: Published SSR-Net weights beside the repository.
REFERENCE_SSRNET = pathlib.Path("../shared/reference/ssrnet/ssrnet_3_3_3_64_1.0_1.0_imdb.h5")


def build_and_check(out_dir: PathLike, faces: np.ndarray, *, side_python: PathLike, ssrnet_weights=None, models=None):
    """Exports every mode of the reference models, then :func:`check_files`.

    Args:
        out_dir: Where the ``.tflite`` files are written.
        faces: Real raw BGR faces; they calibrate int8 too.
        side_python: Python of the side environment.
        ssrnet_weights: Published SSR-Net ``.h5`` (else random weights).
        models: :class:`ssrnet_tf.export.export_matrix.NamedModel` list;
            default :func:`~ssrnet_tf.export.export_matrix.reference_models`.

    Returns:
        The :class:`CompatibilityReport`.
    """
    from ssrnet_tf.export import export_matrix  # pylint: disable=import-outside-toplevel

    models = models if models is not None else export_matrix.reference_models(ssrnet_weights)
    paths = []
    for named in models:
        size = int(named.model.input_shape[1])
        paths += export_matrix.export_every_mode(named, out_dir, faces_at(faces, size))
    return check_files(paths, faces, side_python=side_python)


def main(argv=None) -> int:
    """``python -m ssrnet_tf.export.compatibility``: check files, or build and check."""
    import argparse  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(
        prog="python -m ssrnet_tf.export.compatibility",
        description="Run .tflite files in LiteRT and in an older TFLite runtime on real faces; "
        "print whether each file agrees or is refused at load as it declares.",
    )
    parser.add_argument("files", nargs="*", help=".tflite files to check (default: build every export mode)")
    parser.add_argument("--side-env", default=".venv-tflite214",
                        help="venv with the older runtime, created if missing [.venv-tflite214]")
    parser.add_argument("--faces", default=str(REFERENCE_FACES), help=f".npy of raw BGR faces [{REFERENCE_FACES}]")
    parser.add_argument("--build-dir", default="compat_exports", help="where built files go [compat_exports]")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    faces_path = pathlib.Path(args.faces)
    if not faces_path.is_file():
        print(f"error: {faces_path}: faces .npy not found", file=sys.stderr)
        return 2
    faces = np.load(faces_path).astype(np.float32)
    side_python = create_side_environment(args.side_env)
    if args.files:
        missing = [path for path in args.files if not pathlib.Path(path).is_file()]
        if missing:
            print(f"error: not found: {', '.join(missing)}", file=sys.stderr)
            return 2
        report = check_files(args.files, faces, side_python=side_python)
    else:
        weights = REFERENCE_SSRNET if REFERENCE_SSRNET.is_file() else None
        report = build_and_check(args.build_dir, faces, side_python=side_python, ssrnet_weights=weights)
    table = report.table()
    print(table)
    if args.markdown:
        from ssrnet_tf.utils.atomic import atomic_write_bytes  # pylint: disable=import-outside-toplevel

        atomic_write_bytes(args.markdown, (table + "\n").encode())
    failed = [check for check in report.files if not check.ok]
    print(f"{len(report.files) - len(failed)} of {len(report.files)} files agree or are refused as declared.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
