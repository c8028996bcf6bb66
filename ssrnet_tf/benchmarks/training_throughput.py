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
import resource
import shlex
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

logger = logging.getLogger(__name__)

FORMAT = "ssrnet_tf.training_throughput/1"
STEPS_PER_EXECUTION = (1, 8)


@dataclasses.dataclass
class Combination:
    """One set of switches as asked for.

    Attributes:
        jit_compile: ``"on"`` / ``"off"``.
        mixed_precision: A policy name.
        steps_per_execution: Steps per call.
        pipeline_threads: The input pipeline's thread pool
            (:attr:`ssrnet_tf.data.pipeline.PipelineConfig.threads`):
            ``None`` its own pool (the default), 0 tf.data's shared pool
            (the pipeline before it had its own: the "before" row).
    """

    jit_compile: str
    mixed_precision: str
    steps_per_execution: int
    pipeline_threads: Optional[int] = None

    def label(self) -> str:
        pool = ", shared tf.data pool (before)" if self.pipeline_threads == 0 else ""
        return f"XLA {self.jit_compile}, {self.mixed_precision}, {self.steps_per_execution} step/exec{pool}"


#: The training step as it was before the speed work: no switch on, tf.data's shared thread pool.
BEFORE = Combination("off", "float32", 1, pipeline_threads=0)


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
    return [BEFORE] + [Combination(jit, policy, steps)
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
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
        pipeline_config = dataclasses.replace(trainer.train_pipeline_config(config),
                                              threads=combination.pipeline_threads)
        dataset, report = pipeline.make_dataset(train_table, pipeline_config, target_encoder=built.target_encoder,
                                                name="bench", faces=faces)
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
                       only: Optional[Sequence[Combination]] = None) -> Dict:
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

    Returns:
        The JSON document (:data:`FORMAT`).
    """
    from ssrnet_tf.training import config as config_lib  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.training import execution as execution_lib  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.training import strategy as strategy_lib, trainer  # pylint: disable=import-outside-toplevel

    config = config_lib.load_config(config_name, ["model.weights=null", "model.initial_weights=null", *overrides])
    strategy = strategy_lib.choose_strategy(config.run.strategy)
    device = execution_lib.device_kind(strategy)
    table = trainer.read_table(config)
    train_table = trainer.split_parts(config, table)["train"]
    started = time.perf_counter()
    faces = trainer.open_faces(config, table)
    cache_seconds = time.perf_counter() - started
    auto = execution_lib.resolve_execution(device=device)
    records = []
    for combination in (only or combinations(device, steps_per_execution=steps_per_execution)):
        print(f"  timing {combination.label()} ...", file=sys.stderr, flush=True)
        with strategy.scope():
            record = _time_combination(config, combination, train_table, faces, device, steps, warmup)
        asked = execution_lib.resolve_execution(combination.jit_compile, combination.mixed_precision,
                                                combination.steps_per_execution, device)
        record["auto"] = asked == auto and combination.pipeline_threads is None
        record["before"] = combination == BEFORE
        records.append(record)
    baseline = next((r for r in records if r["auto"]), records[0])
    before = next((r for r in records if r["before"]), None)
    for record in records:
        record["speedup_vs_auto"] = round(record["faces_per_second"] / baseline["faces_per_second"], 2)
        if before is not None:
            record["speedup_vs_before"] = round(record["faces_per_second"] / before["faces_per_second"], 2)
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
        "| input pool | XLA | precision | steps/exec | faces/s | s/epoch | peak MiB | vs before | vs auto |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for record in document["results"]:
        used = record["in_effect"]
        xla = ("on" if used["jit_compile"] else "off") + (" (fell back)" if record["xla_fell_back"] else "")
        pool = "shared (before)" if record.get("before") else "own"
        versus = f"{record['speedup_vs_before']:.2f}x" if "speedup_vs_before" in record else "-"
        lines.append(
            f"| {pool} | {xla} | {used['mixed_precision']} | {used['steps_per_execution']} | "
            f"{record['faces_per_second']:.0f} | {record['seconds_per_epoch']:.1f} | {record['peak_memory_mib']:.0f} | "
            f"{versus} | {record['speedup_vs_auto']:.2f}x{' (auto)' if record['auto'] else ''} |")
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
