"""``ssrnet-tf bench``: CPU latency of age models, side by side."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import textwrap

from ssrnet_tf.commands.common import add_model_arguments, add_weights_dir_argument, models_from, weights_dir_from

EXAMPLES = (
    "ssrnet-tf bench                                        # SSR-Net in every export mode, summary table",
    "ssrnet-tf bench --weights-dir ssrnet_h5/ --full        # offline weights; print the whole grid",
    "ssrnet-tf bench age_int8.tflite runs/ssrnet/model.keras --threads 1 --batches 1   # your files",
    "ssrnet-tf bench --pipeline photos/                     # photo -> ages, time per stage",
    "ssrnet-tf bench --train compact_utkface                # training faces/s for every speed switch",
)

#: Recorded in the spec of files exported from random weights (``predict`` warns on it).
RANDOM_WEIGHTS = "none: randomly initialised for a latency benchmark; its ages are meaningless"


def _published_graph(model):
    """The published SSR-Net graph: our port with Keras' own Flatten back in.

    The published model flattens with ``keras.layers.Flatten``, whose TFLite
    form (SHAPE/STRIDED_SLICE/PACK/RESHAPE) XNNPACK does not take. This is
    the baseline a user got by converting the published model as it was.
    """
    import keras  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.layers.static_flatten import StaticFlatten  # pylint: disable=import-outside-toplevel

    def clone(layer):
        if isinstance(layer, StaticFlatten):
            return keras.layers.Flatten(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


#: The shipped SSR-Net that ``bench`` measures by default (``ssrnet_tf.pretrained``).
SHIPPED_SSRNET = "ssrnet-utkface"


def _load_model(args):
    """``(AgeModel, weights)``: a shipped model, published weights, or (offline) a random SSR-Net.

    ``weights`` names what was loaded (``"random"`` for the random SSR-Net).
    """
    from ssrnet_tf import model_spec, pretrained  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.faces.age_predictor import AgeModel, load_age_model  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.models import build_ssrnet  # pylint: disable=import-outside-toplevel

    if args.weights == SHIPPED_SSRNET and args.weights not in pretrained.shipped_files():
        print(f"model: no {SHIPPED_SSRNET!r} model is shipped in this installation; using the published 'imdb' weights")
        args.weights = "imdb"
    try:
        model = load_age_model(args.weights, weights_dir=weights_dir_from(args, "bench"))
    except (OSError, ValueError, KeyError) as error:
        if args.weights in pretrained.shipped_files():
            raise
        print(f"model: SSR-Net(3,3,3) with RANDOM weights: the {args.weights!r} weights are not at hand\n"
              f"       ({type(error).__name__}). Latency does not depend on weight values, but the files' ages are\n"
              f"       meaningless; pass --weights-dir DIR (a folder with the published .h5 files) for real ones.")
        ssrnet = build_ssrnet()
        spec = model_spec.ModelSpec.for_model(ssrnet, architecture="ssrnet(3,3,3)", training_data=RANDOM_WEIGHTS)
        return AgeModel.from_keras(ssrnet, spec, "random SSR-Net(3,3,3)", spec_source="random weights"), "random"
    if model.kind == "published":
        print(f"model: SSR-Net(3,3,3) with the published {args.weights!r} weights")
        return model, f"published {args.weights}"
    print(f"model: the shipped {args.weights!r} model (trained by this project on UTKFace)")
    return model, f"shipped {args.weights}"


def _published_baseline(args, model):
    """The published graph with the published imdb weights when available, else with ``model``'s (same graph)."""
    from ssrnet_tf import pretrained  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.faces.age_predictor import load_age_model  # pylint: disable=import-outside-toplevel

    if args.weights in pretrained.REGISTRY:
        return _published_graph(model)
    try:
        published = load_age_model("imdb", weights_dir=weights_dir_from(args, "bench")).keras_model
        print("baseline: the published SSR-Net graph with its imdb weights")
        return _published_graph(published)
    except (OSError, ValueError, KeyError):
        print("baseline: the published SSR-Net graph (its weights are not available offline: it carries the "
              "shipped model's weights, which does not change its latency)")
        return _published_graph(model)


def _default_models(args, output_dir: pathlib.Path):
    """The shipped SSR-Net (or published/random weights) in every export mode, and the published graph.

    Every file but the baseline carries the loaded model's spec (the
    published crop for published weights).

    Returns:
        ``(paths, params, weights)``: the files, their parameter counts,
        and the weights used (``"random"`` when none are at hand).
    """
    from ssrnet_tf.export import QUANTIZE_MODES, calibration, convert_to_tflite  # pylint: disable=import-outside-toplevel

    loaded, weights = _load_model(args)
    model, spec = loaded.require_keras("benchmark it"), loaded.spec
    if args.calibration_dir:
        faces = calibration.folder_faces(args.calibration_dir, 64, limit=200)
        print(f"int8 calibration: {len(faces)} faces from {args.calibration_dir}")
    else:
        faces = calibration.drawn_faces(64)
        print("int8 calibration: drawn faces (pass --calibration-dir for real ones; latency is unaffected)")
    paths, params = [], {}
    baseline = output_dir / "published_graph_float32.tflite"
    convert_to_tflite(_published_baseline(args, model), baseline, strip_names=False)
    paths.append(baseline)
    for mode in QUANTIZE_MODES:
        path = output_dir / f"ssrnet_{mode}.tflite"
        convert_to_tflite(model, path, quantize=mode, representative_images=faces, spec=spec)
        paths.append(path)
    int8_input = output_dir / "ssrnet_int8_int8-input.tflite"
    convert_to_tflite(model, int8_input, quantize="int8", representative_images=faces, int8_input_type="int8", spec=spec)
    paths.append(int8_input)
    paths.append(loaded.save_keras(output_dir / "ssrnet.keras"))
    for path in paths:
        params[str(path)] = model.count_params()
    return paths, params, weights


def _summary_title(rows, weights: str) -> str:
    from ssrnet_tf.export import benchmark  # pylint: disable=import-outside-toplevel

    threads = min((r.threads for r in rows if r.threads is not None), default=1)
    batch = min((r.batch for r in rows), default=1)
    marked = "RANDOM weights (latency only)" if weights == "random" else f"weights: {weights}"
    return (f"{benchmark.cpu_name()} ({os.cpu_count()} logical cores)\n"
            f"batch {batch}, {threads} thread{'s' if threads != 1 else ''}, XNNPACK on | {marked}")


def _shipped_int8():
    """Registry name of the default shipped model's int8 file, or ``None`` when nothing is shipped."""
    from ssrnet_tf import pretrained  # pylint: disable=import-outside-toplevel

    try:
        name = pretrained.default_model_name() + pretrained.INT8_SUFFIX
    except FileNotFoundError:
        return None
    return name if name in pretrained.shipped_files() else None


def run_pipeline(args: argparse.Namespace) -> int:
    """``bench --pipeline FOLDER``: stage times of photo -> ages, 1 and all threads."""
    from ssrnet_tf.commands.predict import collect_images  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export.benchmark import cpu_name  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.faces import pipeline_benchmark  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.faces.age_predictor import AgePredictor, load_age_model  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.utils.atomic import atomic_write_bytes  # pylint: disable=import-outside-toplevel

    output_dir = pathlib.Path(args.output_dir)
    images, _ = collect_images([args.pipeline])
    paths = [path for path, _ in images][: args.photos]
    if not paths:
        raise ValueError(f"{args.pipeline}: no image files found.")
    weights_dir = weights_dir_from(args, "bench")
    models = models_from(args)
    model_path = models[0] if models else _shipped_int8()
    if model_path is None:  # nothing shipped: the published SSR-Net (--weights if it names one), as int8
        from ssrnet_tf import pretrained  # pylint: disable=import-outside-toplevel

        published = args.weights if args.weights in pretrained.REGISTRY else "imdb"
        model_path = pipeline_benchmark.published_int8(published, output_dir, weights_dir=weights_dir)
    print(f"age model: {model_path}; {len(paths)} photos from {args.pipeline}; best of {args.repeats} passes per photo")
    print(f"cpu: {cpu_name()}, {os.cpu_count()} logical cores (other processes on the machine slow these figures)")
    timings = []
    for detector in args.detectors:
        # The mtcnn package runs on TensorFlow's own thread pool, fixed at start-up.
        for threads in sorted({1, os.cpu_count() or 1}) if detector == "litert" else [None]:
            predictor = AgePredictor(load_age_model(model_path, weights_dir=weights_dir, num_threads=threads), detector=detector,
                                     num_threads=threads)
            label = f"{detector}, {threads} thread{'s' if threads > 1 else ''}" if threads else f"{detector} (TF threads)"
            with pipeline_benchmark.opencv_threads(threads):
                timings.append(pipeline_benchmark.time_pipeline(predictor, paths, label, repeats=args.repeats))
            print(pipeline_benchmark.format_timings(timings[-1:]).splitlines()[-1], flush=True)
    print()
    print(pipeline_benchmark.format_timings(timings))
    report = {"model": str(model_path), "folder": str(args.pipeline), "cpu": cpu_name(),
              "timings": [dataclasses.asdict(t) for t in timings]}
    json_path = output_dir / "pipeline.json"
    atomic_write_bytes(json_path, json.dumps(report, indent=2).encode())
    print(f"\nJSON: {json_path}")
    return 0


def run_training(args: argparse.Namespace) -> int:
    """``--train CONFIG``: training throughput under every combination of the speed switches."""
    from ssrnet_tf.benchmarks import training_throughput  # pylint: disable=import-outside-toplevel

    output_dir = pathlib.Path(args.output_dir)
    only = None
    if args.combinations == "auto":
        from ssrnet_tf.training import execution  # pylint: disable=import-outside-toplevel

        chosen = execution.resolve_execution(device=execution.device_kind())
        only = [training_throughput.Combination("on" if chosen.jit_compile else "off", chosen.mixed_precision,
                                                chosen.steps_per_execution)]
    document = training_throughput.benchmark_training(args.train, args.overrides, steps=args.steps,
                                                      warmup=args.warmup_steps, rounds=args.rounds, only=only)
    print(training_throughput.format_table(document))
    path = training_throughput.write_json(document, output_dir / f"train_{document['config']}.json")
    print(f"written: {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Benchmarks the given models (or the built-in set) and reports."""
    if args.pipeline:
        return run_pipeline(args)
    if args.train:
        return run_training(args)
    from ssrnet_tf.export import bench_report, benchmark  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.utils.atomic import atomic_write_bytes  # pylint: disable=import-outside-toplevel

    output_dir = pathlib.Path(args.output_dir)
    models = models_from(args)
    if models:
        paths, params, weights = [pathlib.Path(p) for p in models], {}, "as in the files"
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: model file not found.")
            if path.suffix == ".keras":  # refused here, with the file named, rather than in a worker process
                from ssrnet_tf.model_spec import load_keras  # pylint: disable=import-outside-toplevel

                load_keras(path)
    else:
        paths, params, weights = _default_models(args, output_dir)
    options = {"threads": args.threads, "batches": args.batches, "runs": args.runs,
               "xnnpack_modes": [True] if args.xnnpack_only else [True, False]}
    rows = benchmark.benchmark_files([str(p) for p in paths], params=params, **options)
    summary = bench_report.summary_rows(rows)
    title = _summary_title(rows, weights)
    flagged = bench_report.slow_with_threads(rows)
    print()
    print(textwrap.fill(benchmark.header(args.threads), 100, subsequent_indent="  "))
    print(title.replace("\n", " | "))
    print(bench_report.format_summary(summary))
    print(f"speed-up: p50 of {bench_report.baseline_name(rows)} / p50 of the file")
    if args.full:
        print("\nfull grid (p50/p90/p99 per face):")
        print(benchmark.format_table(rows, flagged))
        note = bench_report.full_grid_note(rows, os.cpu_count())
        if note:
            print(note)
    report = {
        "header": benchmark.header(args.threads), "title": title, "weights": weights,
        "random_weights": weights == "random", "baseline": bench_report.baseline_name(rows),
        "summary": [dataclasses.asdict(r) for r in summary],
        "slow_with_threads": [pathlib.Path(rows[i].model).name + f" thr={rows[i].threads} xnnpack={rows[i].xnnpack} "
                              f"batch={rows[i].batch}" for i in flagged],
        "rows": [dataclasses.asdict(r) for r in rows],
    }
    json_path = output_dir / "benchmark.json"
    atomic_write_bytes(json_path, json.dumps(report, indent=2).encode())
    plot_path = output_dir / "benchmark.png"
    bench_report.plot_summary(summary, plot_path, title)
    more = "" if args.full else " (the full grid: --full, or its \"rows\")"
    print(f"\nJSON: {json_path}{more}\nplot: {plot_path}")
    if weights == "random":
        print("note: RANDOM weights: the latencies hold, the files' ages do not (pass --weights-dir).", file=sys.stderr)
    return 0


def add_parser(commands) -> None:
    """Adds ``bench`` to the ``ssrnet-tf`` sub-command parsers."""
    parser = commands.add_parser(
        "bench",
        help="CPU latency of .tflite/.keras models side by side (default: SSR-Net in every export mode)",
        description="Measures models side by side: LiteRT with 1/2/4 threads and XNNPACK on/off, Keras predict_on_batch as "
        "the baseline; p50/p90/p99 per face, throughput at batch 1 and 32, size, parameters, peak memory. Prints one "
        "summary row per file (batch 1, one thread, XNNPACK on: size, p50, p90, speed-up against the published "
        "float32 graph, XNNPACK coverage) and plots it; the full grid is printed with --full and always written to "
        "benchmark.json. Without models: SSR-Net with the published weights in every export mode (random weights, "
        "marked as such, when they are not at hand).",
    )
    add_model_arguments(parser, many=True,
                        help_text=".tflite and .keras files (default: the shipped SSR-Net in every export mode)")
    parser.add_argument("--weights", default=SHIPPED_SSRNET,
                        help=f"shipped or published SSR-Net weights for the default models [{SHIPPED_SSRNET}]")
    add_weights_dir_argument(parser)
    parser.add_argument("--calibration-dir", help="real face crops for the default int8 export")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4], help="[1 2 4]")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="[1 32]")
    parser.add_argument("--runs", type=int, default=200, help="timed batch-1 runs (fewer for larger batches) [200]")
    parser.add_argument("--xnnpack-only", action="store_true", help="skip the XNNPACK-off runs")
    parser.add_argument("--pipeline", metavar="FOLDER",
                        help="instead: time photo -> ages on the photos in FOLDER per stage (decode, detect, align, "
                        "age model) with 1 and all threads; the age model is the first MODEL, else the shipped int8 model, "
                        "else the published SSR-Net (imdb) as int8")
    parser.add_argument("--detectors", nargs="+", choices=("litert", "mtcnn"), default=["litert"],
                        help="MTCNN backends timed by --pipeline [litert]")
    parser.add_argument("--photos", type=int, default=50, help="photos timed by --pipeline [50]")
    parser.add_argument("--repeats", type=int, default=3, help="passes by --pipeline; the fastest per photo counts [3]")
    parser.add_argument("--train", metavar="CONFIG",
                        help="instead: training faces/s of an experiment config (name or YAML) for every combination "
                        "of the speed switches (XLA, mixed precision, steps per execution), its real input pipeline "
                        "and augmentations; table and OUTPUT_DIR/train_CONFIG.json")
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per combination, --train [40]")
    parser.add_argument("--warmup-steps", type=int, default=8, help="untimed steps first, --train [8]")
    parser.add_argument("--combinations", choices=("all", "auto"), default="all",
                        help="time every combination of the switches, or only what run.*: auto picks here, --train [all]")
    parser.add_argument("--rounds", type=int, default=2,
                        help="times each combination is timed (each in a fresh process, taking turns; the fastest "
                        "round counts), --train [2]")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for --train (repeatable), e.g. --set data.path=faces/")
    parser.add_argument("--full", action="store_true", help="also print the full grid (threads x XNNPACK x batch)")
    parser.add_argument("--output-dir", default="runs/bench", help="models, benchmark.json and benchmark.png [runs/bench]")
    parser.set_defaults(handler=run)
