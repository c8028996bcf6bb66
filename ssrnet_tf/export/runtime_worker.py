"""Runs ``.tflite`` files on faces with one TFLite runtime; prints JSON.

A stand-alone script, not a part of the package API: it imports only NumPy
and one interpreter, so that it runs in a side environment that holds an app
developer's runtime (``pip install tflite-runtime==2.14.0 'numpy<2'``) and
nothing of this project. :mod:`ssrnet_tf.export.compatibility` starts it::

    python runtime_worker.py --runtime tflite_runtime faces.npy a.tflite b.tflite

For each file it loads the model as an app does (default op resolver, so
XNNPACK where the runtime applies it), feeds every face one at a time and
reads the ``"age"`` output (the single output, or the serving signature's
``"age"`` of a multi-output model). A file the runtime refuses at load or
allocation is reported with the runtime's message, never raised. Output:
``{"runtime": name, "version": v, "files": {path: {"ages": [...]} or
{"error": "..."}}}`` on stdout.
"""

import argparse
import json
import sys

import numpy as np

#: Interpreter modules by runtime name.
RUNTIMES = {
    "tflite_runtime": "tflite_runtime.interpreter",
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tensorflow": "tensorflow.lite.python.interpreter",
}


def _interpreter_factory(runtime, xnnpack):
    import functools  # pylint: disable=import-outside-toplevel
    import importlib  # pylint: disable=import-outside-toplevel

    module = importlib.import_module(RUNTIMES[runtime])
    interpreter, resolvers = module.Interpreter, module.OpResolverType
    if xnnpack:
        return interpreter
    return functools.partial(
        interpreter, experimental_op_resolver_type=resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )


def _version(runtime):
    import importlib  # pylint: disable=import-outside-toplevel
    from importlib import metadata  # pylint: disable=import-outside-toplevel

    if runtime == "tensorflow":
        return importlib.import_module("tensorflow").__version__
    distribution = {"tflite_runtime": "tflite-runtime", "ai_edge_litert": "ai-edge-litert"}[runtime]
    return metadata.version(distribution)


def _to_input(face, detail):
    dtype = np.dtype(detail["dtype"])
    if dtype.kind in "iu":
        scale, zero_point = detail["quantization"]
        info = np.iinfo(dtype)
        face = np.clip(np.round(face / scale + zero_point), info.min, info.max)
    return face.astype(dtype)


def _ages(interpreter, faces):
    signatures = interpreter.get_signature_list()
    outputs = next(iter(signatures.values()))["outputs"] if signatures else []
    ages = []
    if len(outputs) > 1:
        key = next(iter(signatures))
        runner = interpreter.get_signature_runner(key)
        input_name = signatures[key]["inputs"][0]
        detail = runner.get_input_details()[input_name]
        for face in faces:
            ages.append(float(np.ravel(runner(**{input_name: _to_input(face[None], detail)})["age"])[0]))
        return ages
    detail = interpreter.get_input_details()[0]
    output = interpreter.get_output_details()[0]
    for face in faces:
        interpreter.set_tensor(detail["index"], _to_input(face[None], detail))
        interpreter.invoke()
        ages.append(float(np.ravel(interpreter.get_tensor(output["index"]))[0]))
    return ages


def run_file(interpreter_class, path, faces):
    """``{"ages": [...]}`` or ``{"error": message}`` for one file."""
    try:
        interpreter = interpreter_class(model_path=path)
        detail = interpreter.get_input_details()[0]
        if tuple(detail["shape"][1:]) != faces.shape[1:]:
            return {"error": f"input shape {tuple(detail['shape'])} does not take faces of shape {faces.shape[1:]}"}
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        return {"error": str(error).strip()}
    return {"ages": _ages(interpreter, faces)}


def main(argv=None):
    """Command line entry; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", choices=sorted(RUNTIMES), required=True)
    parser.add_argument("--no-xnnpack", action="store_true", help="reference kernels only (no default delegate)")
    parser.add_argument("faces", help=".npy of float32 or uint8 (N, H, W, 3) raw BGR faces")
    parser.add_argument("files", nargs="+", help=".tflite files")
    args = parser.parse_args(argv)
    faces = np.load(args.faces).astype(np.float32)
    interpreter_class = _interpreter_factory(args.runtime, xnnpack=not args.no_xnnpack)
    results = {path: run_file(interpreter_class, path, faces) for path in args.files}
    json.dump({"runtime": args.runtime, "version": _version(args.runtime), "files": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
