"""Training throughput of a named config under every combination of the speed switches.

``ssrnet-tf bench --train CONFIG`` runs :func:`benchmark_training` in one
process: the config's model, its real input pipeline (the decoded-face
cache of its data, its augmentations, its batch size) and its optimizer and
losses, compiled once per combination of

* ``jit_compile``: off, on;
* ``mixed_precision``: float32 and the device's mixed policy
  (``mixed_float16`` on GPU; ``mixed_bfloat16`` on TPU and on a CPU with
  AVX-512 BF16 or AMX);
* ``steps_per_execution``: 1 and 8 (:data:`STEPS_PER_EXECUTION`).

For each combination it trains ``warmup`` steps (tracing and compiling),
then times ``steps`` more, and reports training faces per second, the
seconds one epoch of the config's training faces takes at that rate, the
peak resident memory of the timed steps, and the switches in effect (an op
XLA cannot compile turns XLA off, and the row says so). The row marked
``auto`` is what ``run.*: auto`` picks on this device
(:mod:`ssrnet_tf.training.execution`).

The result is a table on stdout and a JSON document
(:data:`FORMAT`): the command, date, CPU model and instruction-set level,
versions, the config and one record per combination.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import logging
import os
import pathlib
import platform
import shlex
import sys
import time
from typing import Dict, List, Optional, Sequence

logger = logging.getLogger(__name__)

FORMAT = "ssrnet_tf.training_throughput/1"
STEPS_PER_EXECUTION = (1, 8)


@dataclasses.dataclass
class Combination:
    """One set of switches as asked for (``jit_compile``, ``mixed_precision``, ``steps_per_execution``)."""

    jit_compile: str
    mixed_precision: str
    steps_per_execution: int

    def label(self) -> str:
        return f"XLA {self.jit_compile}, {self.mixed_precision}, {self.steps_per_execution} step/exec"


def mixed_policy(device: str, flags=None) -> Optional[str]:
    """The device's mixed-precision policy worth trying (``None`` if it has none)."""
    from ssrnet_tf.training import execution  # pylint: disable=import-outside-toplevel

    if device == "gpu":
        return "mixed_float16"
    if device == "tpu":
        return "mixed_bfloat16"
    flags = execution.cpu_flags() if flags is None else flags
    return "mixed_bfloat16" if {"avx512_bf16", "amx_bf16"} & set(flags) else None


def combinations(device: str, flags=None, steps_per_execution: Sequence[int] = STEPS_PER_EXECUTION) -> List[Combination]:
    """Every combination of the switches worth timing on ``device``."""
    policies = ["float32"] + ([mixed_policy(device, flags)] if mixed_policy(device, flags) else [])
    return [Combination(jit, policy, steps)
            for jit, policy, steps in itertools.product(("off", "on"), policies, steps_per_execution)]


def reset_peak_memory() -> bool:
    """Resets the process's peak resident set (Linux ``clear_refs``); ``False`` where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_memory_mib() -> float:
    """Peak resident memory of this process in MiB (since the last :func:`reset_peak_memory`)."""
    from ssrnet_tf.export.benchmark import peak_rss_mib  # pylint: disable=import-outside-toplevel

    return peak_rss_mib()


def machine_description() -> Dict[str, str]:
    """CPU model, instruction-set level, cores and versions."""
    import keras  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.export.benchmark import cpu_name  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.training import execution  # pylint: disable=import-outside-toplevel

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_name(), "isa": execution.cpu_isa_level(), "logical_cores": str(os.cpu_count()),
        "usable_cores": str(usable), "gpus": str(len(tf.config.list_physical_devices("GPU"))),
        "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
    }


def _release() -> None:
    """Frees the last combination's model and input pipeline before the next one is timed.

    A ``tf.data`` iterator left to the garbage collector keeps its prefetch
    threads producing batches, which would steal the cores from the next
    combination's timed steps.
    """
    import gc  # pylint: disable=import-outside-toplevel

    import keras  # pylint: disable=import-outside-toplevel

    gc.collect()
    keras.backend.clear_session()
    gc.collect()


def _time_combination(config, combination: Combination, train_table, faces, device: str, steps: int,
                      warmup: int) -> Dict:
    """Builds, compiles and times one combination; returns its record."""
    import keras  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.data import pipeline  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.training import execution as execution_lib  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.training import schedules, trainer  # pylint: disable=import-outside-toplevel

    keras.backend.clear_session()
    keras.utils.set_random_seed(config.run.seed)
    chosen = execution_lib.resolve_execution(combination.jit_compile, combination.mixed_precision,
                                             combination.steps_per_execution, device)
    execution_lib.set_precision(chosen.mixed_precision)
    try:
        built = trainer.build_model(config)
        dataset, report = pipeline.make_dataset(train_table, trainer.train_pipeline_config(config),
                                                target_encoder=built.target_encoder, name="bench", faces=faces)
        dataset = dataset.repeat()
        rate = schedules.build_learning_rate(config.schedule, config.optimizer.learning_rate,
                                             report.steps_per_epoch, config.run.epochs)
        started = time.perf_counter()
        used = execution_lib.compile_model(
            built.model, chosen, dataset, optimizer=trainer.optimizer_for(config.optimizer, rate), loss=built.losses,
            loss_weights=built.loss_weights, metrics=built.metrics)
        spe = used.steps_per_execution
        warm = max(warmup, spe) // spe * spe
        timed = max(steps, spe) // spe * spe
        built.model.fit(dataset, steps_per_epoch=warm, epochs=1, verbose=0, shuffle=False)
        warm_seconds = time.perf_counter() - started
        reset_peak_memory()
        started = time.perf_counter()
        built.model.fit(dataset, steps_per_epoch=timed, epochs=1, verbose=0, shuffle=False)
        seconds = time.perf_counter() - started
    finally:
        execution_lib.set_precision("float32")
        _release()
    faces_per_second = timed * config.data.batch_size / seconds
    return {
        "asked": dataclasses.asdict(combination), "in_effect": used.to_dict(),
        "xla_fell_back": chosen.jit_compile and not used.jit_compile,
        "steps": timed, "batch_size": config.data.batch_size, "seconds": round(seconds, 3),
        "warmup_steps": warm, "warmup_seconds": round(warm_seconds, 2),
        "faces_per_second": round(faces_per_second, 1),
        "seconds_per_epoch": round(len(train_table) / faces_per_second, 2),
        "peak_memory_mib": round(peak_memory_mib(), 1),
    }


def benchmark_training(config_name: str, overrides: Sequence[str] = (), steps: int = 40, warmup: int = 8,
                       steps_per_execution: Sequence[int] = STEPS_PER_EXECUTION,
                       only: Optional[Sequence[Combination]] = None, isolate: bool = True,
                       rounds: int = 2) -> Dict:
    """Times the training step of a config under every switch combination (see the module docstring).

    Args:
        config_name: A named experiment config or a YAML file.
        overrides: ``section.key=value`` overrides (``model.weights=null`` is
            added: no download is needed to time a step).
        steps: Timed steps per combination (rounded down to whole
            executions).
        warmup: Untimed steps first (tracing, XLA compilation).
        steps_per_execution: The values of that switch to try.
        only: Time these combinations instead of all.
        isolate: Time each combination in a fresh child process of this
            one (the default). Timed one after another in one process, the
            same combination measured 569 and 476 faces/s depending on its
            place in the order (threads, caches and memory of the earlier
            ones stay behind); a child process starts every combination
            alike. The face cache is opened once here and shared.
        rounds: Times each combination is timed, the combinations taking
            turns; the fastest round counts (on this shared 2-core machine
            about one timing in three ran 30-50 % slow).

    Returns:
        The JSON document (:data:`FORMAT`).
    """
    from ssrnet_tf.training import execution as execution_lib  # pylint: disable=import-outside-toplevel

    config, strategy, device, train_table, faces, cache_seconds = _setup(config_name, overrides)
    auto = execution_lib.resolve_execution(device=device)
    records = []
    chosen = list(only or combinations(device, steps_per_execution=steps_per_execution))
    timings: List[List[Dict]] = [[] for _ in chosen]
    for round_index in range(rounds):  # interleaved: a slow spell of the machine hits every combination alike
        for index, combination in enumerate(chosen):
            print(f"  round {round_index + 1}/{rounds}: timing {combination.label()} ...", file=sys.stderr, flush=True)
            if isolate:
                timings[index].append(_time_in_child(config_name, overrides, combination, steps, warmup))
            else:
                with strategy.scope():
                    timings[index].append(_time_combination(config, combination, train_table, faces, device, steps,
                                                            warmup))
    records = []
    for combination, runs in zip(chosen, timings):
        record = _fastest_record(runs, len(train_table))
        asked = execution_lib.resolve_execution(combination.jit_compile, combination.mixed_precision,
                                                combination.steps_per_execution, device)
        record["auto"] = asked == auto
        records.append(record)
    baseline = next((r for r in records if r["auto"]), records[0])
    for record in records:
        record["speedup_vs_auto"] = round(record["faces_per_second"] / baseline["faces_per_second"], 2)
    return {
        "format": FORMAT,
        "command": shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_description(),
        "device": device,
        "config": config.name,
        "overrides": list(overrides),
        "model": f"{config.model.architecture}: {config.model.backbone if config.model.architecture == 'backbone' else 'ssrnet'}"
                 f" {config.model.input_size} px",
        "batch_size": config.data.batch_size,
        "augment": list(config.data.augment),
        "train_faces": len(train_table),
        "face_cache": {"path": str(faces.path) if faces else None,
                       "built_seconds": round(faces.built_seconds, 1) if faces else None,
                       "open_seconds": round(cache_seconds, 1)},
        "auto": auto.to_dict(),
        "results": records,
    }


def _fastest_record(runs: List[Dict], train_faces: int) -> Dict:
    """The fastest round's record, with every round's figure.

    Interference from other load on the machine only ever slows a timing
    down, so the fastest round is the best estimate of what the
    combination can do.
    """
    rates = [r["faces_per_second"] for r in runs]
    record = dict(max(runs, key=lambda r: r["faces_per_second"]))
    record.update(rounds=len(runs), faces_per_second_rounds=rates, faces_per_second_range=[min(rates), max(rates)],
                  peak_memory_mib=max(r["peak_memory_mib"] for r in runs),
                  seconds_per_epoch=round(train_faces / record["faces_per_second"], 2))
    return record


def resummarise(document: Dict) -> Dict:
    """Recomputes the chosen figure of every combination and the ratios from each round's figures."""
    for record in document["results"]:
        rates = record.get("faces_per_second_rounds") or [record["faces_per_second"]]
        record["faces_per_second"] = max(rates)
        record["faces_per_second_range"] = [min(rates), max(rates)]
        record["seconds_per_epoch"] = round(document["train_faces"] / record["faces_per_second"], 2)
    baseline = next((r for r in document["results"] if r["auto"]), document["results"][0])
    for record in document["results"]:
        record["speedup_vs_auto"] = round(record["faces_per_second"] / baseline["faces_per_second"], 2)
    return document


def _time_in_child(config_name: str, overrides: Sequence[str], combination: Combination, steps: int,
                   warmup: int) -> Dict:
    """:func:`_time_combination` in a fresh Python process; returns its record."""
    import subprocess  # pylint: disable=import-outside-toplevel

    request = {"config": config_name, "overrides": list(overrides), "combination": dataclasses.asdict(combination),
               "steps": steps, "warmup": warmup}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    done = subprocess.run([sys.executable, "-m", __name__, json.dumps(request)], capture_output=True, text=True,
                          env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_RECORD)]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"timing {combination.label()} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1][len(_RECORD):])


_RECORD = "TRAINING_THROUGHPUT_RECORD "


def _setup(config_name: str, overrides: Sequence[str]):
    """``(config, strategy, device, training table, face cache, seconds to open the cache)`` (no download needed)."""
    from ssrnet_tf.training import config as config_lib  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.training import execution as execution_lib  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.training import strategy as strategy_lib, trainer  # pylint: disable=import-outside-toplevel

    config = config_lib.load_config(config_name, ["model.weights=null", "model.initial_weights=null", *overrides])
    strategy = strategy_lib.choose_strategy(config.run.strategy)
    table = trainer.read_table(config)
    train_table = trainer.split_parts(config, table)["train"]
    started = time.perf_counter()
    faces = trainer.open_faces(config, table)
    return config, strategy, execution_lib.device_kind(strategy), train_table, faces, time.perf_counter() - started


def _child(request: Dict) -> None:
    """The child process of :func:`_time_in_child`: times one combination, prints its record."""
    config, strategy, device, train_table, faces, _ = _setup(request["config"], request["overrides"])
    with strategy.scope():
        record = _time_combination(config, Combination(**request["combination"]), train_table, faces, device,
                                   request["steps"], request["warmup"])
    print(_RECORD + json.dumps(record), flush=True)


def format_table(document: Dict) -> str:
    """The benchmark as a Markdown table with a header naming the machine."""
    machine = document["machine"]
    lines = [
        f"# training throughput: {document['config']} ({document['model']}, batch {document['batch_size']}, "
        f"augment {', '.join(document['augment']) or 'none'}; {document['train_faces']} training faces)",
        f"# machine: {machine['cpu']}, {machine['isa']}, {machine['usable_cores']} cores usable, "
        f"{machine['gpus']} GPU; tensorflow {machine['tensorflow']}, keras {machine['keras']}",
        f"# command: {document['command']}",
        "",
        "| XLA | precision | steps/exec | faces/s (fastest round) | rounds | s/epoch | peak MiB | vs auto |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for record in document["results"]:
        used = record["in_effect"]
        xla = ("on" if used["jit_compile"] else "off") + (" (fell back)" if record["xla_fell_back"] else "")
        rounds = ", ".join(f"{rate:.0f}" for rate in record.get("faces_per_second_rounds", [record["faces_per_second"]]))
        lines.append(
            f"| {xla} | {used['mixed_precision']} | {used['steps_per_execution']} | {record['faces_per_second']:.0f} | "
            f"{rounds} | {record['seconds_per_epoch']:.1f} | {record['peak_memory_mib']:.0f} | "
            f"{record['speedup_vs_auto']:.2f}x{' (auto)' if record['auto'] else ''} |")
    best = max(document["results"], key=lambda r: r["faces_per_second"])
    used = best["in_effect"]
    lines += ["", f"fastest here: XLA {'on' if used['jit_compile'] else 'off'}, {used['mixed_precision']}, "
                  f"{used['steps_per_execution']} step/exec: {best['faces_per_second']:.0f} faces/s, "
                  f"{best['speedup_vs_auto']:.2f}x of auto"]
    return "\n".join(lines)


def write_json(document: Dict, path) -> pathlib.Path:
    """Writes the document atomically."""
    from ssrnet_tf.utils.atomic import atomic_write_bytes  # pylint: disable=import-outside-toplevel

    return atomic_write_bytes(path, json.dumps(document, indent=1).encode())


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
