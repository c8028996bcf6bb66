"""The speed switches of a training run: XLA, mixed precision, steps per execution.

Each switch is a ``run.`` setting that defaults to ``"auto"``.
:func:`resolve_execution` turns the settings into what a run uses on the
device at hand; ``auto`` is on only where the training-throughput benchmark
(``ssrnet-tf bench --train CONFIG``, :mod:`ssrnet_tf.benchmarks.training_throughput`)
measured it faster on that kind of device, or, where no such device could be
measured, where the framework's own guidance says so (marked below).

=====================  ======================================================
switch                 ``auto`` resolves to
=====================  ======================================================
``jit_compile``        on for GPU and TPU (Keras' own ``auto`` on GPU; a TPU
                       always compiles); **off on CPU**: XLA measured 1.7x
                       (SSR-Net) to 6x (MobileNetV3) *slower* on a 2-core
                       AMD EPYC with AVX-512
``mixed_precision``    ``mixed_float16`` on GPU, ``mixed_bfloat16`` on TPU;
                       ``float32`` on CPU: ``mixed_bfloat16`` measured slower
                       on AVX-512 BF16 (AMD EPYC, oneDNN); AMX was not at hand
``steps_per_execution`` 32 on TPU (Keras' TPU guidance, not measured here);
                       1 elsewhere: more steps per call measured no faster on
                       CPU
=====================  ======================================================

Every switch can be set explicitly: ``run.jit_compile=off``,
``run.mixed_precision=mixed_bfloat16``, ``run.steps_per_execution=8``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib
import re
from typing import FrozenSet, Optional

logger = logging.getLogger(__name__)

JIT_CHOICES = ("auto", "on", "off")
#: ``on`` is the older spelling of ``mixed_float16``.
PRECISION_CHOICES = ("auto", "off", "float32", "mixed_float16", "mixed_bfloat16", "on")
DEVICES = ("cpu", "gpu", "tpu")


@dataclasses.dataclass(frozen=True)
class Execution:
    """What a run executes with (the resolved switches).

    Attributes:
        device: ``"cpu"``, ``"gpu"`` or ``"tpu"``.
        jit_compile: XLA-compile the training step.
        mixed_precision: The Keras dtype policy (``"float32"``,
            ``"mixed_float16"`` or ``"mixed_bfloat16"``).
        steps_per_execution: Training steps per call of the compiled step.
    """

    device: str
    jit_compile: bool
    mixed_precision: str
    steps_per_execution: int

    def describe(self) -> str:
        """One line: ``cpu: XLA off, float32, 1 step per execution``."""
        steps = self.steps_per_execution
        return (f"{self.device}: XLA {'on' if self.jit_compile else 'off'}, {self.mixed_precision}, "
                f"{steps} step{'s' if steps != 1 else ''} per execution")

    def to_dict(self):
        """Plain values (for ``summary.json`` and benchmark JSON)."""
        return dataclasses.asdict(self)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> FrozenSet[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it does not exist)."""
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    match = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    return frozenset(match.group(1).split()) if match else frozenset()


def cpu_isa_level(flags: Optional[FrozenSet[str]] = None) -> str:
    """The vector instruction-set level that matters for training and int8 inference.

    Returns:
        e.g. ``"AVX-512 (VNNI, BF16)"``, ``"AMX (BF16, INT8)"``, ``"AVX2"``,
        ``"NEON"`` or ``"unknown"``.
    """
    flags = cpu_flags() if flags is None else flags
    if "amx_tile" in flags:
        return "AMX (" + ", ".join(x for x, f in (("BF16", "amx_bf16"), ("INT8", "amx_int8")) if f in flags) + ")"
    if "avx512f" in flags:
        extras = [name for name, flag in (("VNNI", "avx512_vnni"), ("BF16", "avx512_bf16")) if flag in flags]
        return "AVX-512" + (f" ({', '.join(extras)})" if extras else "")
    if "avx2" in flags:
        return "AVX2" + (" (AVX-VNNI)" if "avx_vnni" in flags else "")
    if "asimd" in flags or "neon" in flags:
        return "NEON"
    return "unknown"


def device_kind(strategy=None) -> str:
    """``"tpu"`` for a TPU strategy, ``"gpu"`` when a GPU is visible, else ``"cpu"``."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    if strategy is not None and "TPU" in type(strategy).__name__:
        return "tpu"
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def _check(name: str, value, choices) -> None:
    if value not in choices:
        from ssrnet_tf.errors import ConfigError  # pylint: disable=import-outside-toplevel

        raise ConfigError(f"run.{name} = {value!r} is not allowed: must be one of {', '.join(map(repr, choices))}.")


def resolve_execution(jit_compile="auto", mixed_precision="auto", steps_per_execution="auto",
                      device: str = "cpu") -> Execution:
    """The switches a run uses on ``device`` (see the module docstring for ``auto``).

    Args:
        jit_compile: ``"auto"``, ``"on"`` or ``"off"`` (booleans accepted).
        mixed_precision: One of :data:`PRECISION_CHOICES` (booleans accepted:
            ``True`` is ``"on"``).
        steps_per_execution: ``"auto"`` or an integer >= 1.
        device: ``"cpu"``, ``"gpu"`` or ``"tpu"``.

    Raises:
        ConfigError: For an unknown value, listing the choices.
    """
    if isinstance(jit_compile, bool):
        jit_compile = "on" if jit_compile else "off"
    if isinstance(mixed_precision, bool):
        mixed_precision = "on" if mixed_precision else "off"
    _check("jit_compile", jit_compile, JIT_CHOICES)
    _check("mixed_precision", mixed_precision, PRECISION_CHOICES)
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}.")
    if steps_per_execution != "auto" and not (isinstance(steps_per_execution, int)
                                              and not isinstance(steps_per_execution, bool)
                                              and steps_per_execution >= 1):
        from ssrnet_tf.errors import ConfigError  # pylint: disable=import-outside-toplevel

        raise ConfigError(f"run.steps_per_execution = {steps_per_execution!r} is not allowed: "
                          "must be 'auto' or an integer >= 1.")
    jit = {"on": True, "off": False}.get(jit_compile, device in ("gpu", "tpu"))
    if mixed_precision == "auto":
        policy = {"gpu": "mixed_float16", "tpu": "mixed_bfloat16"}.get(device, "float32")
    else:
        policy = {"off": "float32", "on": "mixed_float16"}.get(mixed_precision, mixed_precision)
    steps = steps_per_execution if steps_per_execution != "auto" else (32 if device == "tpu" else 1)
    return Execution(device=device, jit_compile=jit, mixed_precision=policy, steps_per_execution=int(steps))


def set_precision(policy: str) -> str:
    """Sets the global Keras dtype policy; returns its name."""
    import keras  # pylint: disable=import-outside-toplevel

    keras.mixed_precision.set_global_policy(policy)
    return policy


def _failing_op(error: Exception) -> str:
    """The op named in an XLA compilation error (else the error's first line)."""
    text = str(error)
    for pattern in (r"No registered '([\w>]+)' OpKernel", r"unsupported operations[^:]*?XLA_\w+(?:_JIT)?: (\w+)",
                    r"op '?([A-Z]\w+)'? (?:is not|not) (?:supported|compilable)"):
        match = re.search(pattern, text)
        if match:
            return f"the op {match.group(1)}"
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return first[:200]


def xla_failure(model, dataset) -> Optional[str]:
    """Whether XLA can compile ``model``'s training step: ``None``, or what it cannot compile.

    Traces the loss and its gradients on one batch of ``dataset`` with
    ``jit_compile=True`` and lowers them to HLO, which is where XLA refuses
    an op it has no kernel for. Nothing is executed: weights, batch-norm
    statistics and the optimizer stay as they are. The model must be
    compiled (its loss is used).
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    images, targets = next(iter(dataset.take(1)))

    @tf.function(jit_compile=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    try:
        step.experimental_get_compiler_ir(images, targets)(stage="hlo")
    except (tf.errors.OpError, ValueError, TypeError, NotImplementedError) as error:
        return _failing_op(error)
    return None


def _build_before_fit(model, dataset, strategy) -> None:
    """Builds the model's loss, metrics and optimizer state from one local batch.

    Keras 3's ``fit`` and ``evaluate`` otherwise build them from the first
    *distributed* batch, which they first average over the workers with
    ``strategy.reduce`` on the whole batch structure; under
    ``MultiWorkerMirroredStrategy`` that fails ("Attempt to convert a value
    (PerReplica ...)", keras-team/keras#20585). Built beforehand, there is
    nothing left to build, so that step is skipped for this model.
    """
    batch = next(iter(dataset.take(1)))
    with strategy.scope():
        model._symbolic_build(data_batch=batch)  # pylint: disable=protected-access

    def nothing_to_build(iterator=None, data_batch=None):  # pylint: disable=unused-argument
        return None

    model._maybe_symbolic_build = nothing_to_build  # pylint: disable=protected-access
    # Keras averages a step's logs over the workers with strategy.reduce("MEAN", value, axis=0), which
    # fails on the scalar logs; given as 1-element vectors, they are averaged over the workers' shards,
    # so every worker's callbacks see the same values.
    model.train_step = _logs_as_vectors(model.train_step)
    model.test_step = _logs_as_vectors(model.test_step)


def _logs_as_vectors(step):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    def vector_logs(data):
        return {key: tf.reshape(value, [1]) for key, value in step(data).items()}

    return vector_logs


def compile_model(model, execution: Execution, dataset=None, **compile_arguments) -> Execution:
    """``model.compile`` with the run's switches; XLA falls back to the plain step if it cannot compile.

    Args:
        model: The Keras model.
        execution: The resolved switches.
        dataset: Training batches; with ``execution.jit_compile`` one batch
            is traced to check that XLA compiles the step (single-replica
            strategies; a distributed run trusts the switch).
        **compile_arguments: ``optimizer``, ``loss``, ``loss_weights``,
            ``metrics``.

    Returns:
        The switches in effect (``jit_compile`` off after a fallback).
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    model.compile(jit_compile=execution.jit_compile, steps_per_execution=execution.steps_per_execution,
                  **compile_arguments)
    strategy = tf.distribute.get_strategy()
    if dataset is not None and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _build_before_fit(model, dataset, strategy)
    if execution.jit_compile and dataset is not None and strategy.num_replicas_in_sync == 1:
        failure = xla_failure(model, dataset)
        if failure is not None:
            logger.warning("XLA cannot compile %s: training without XLA (set run.jit_compile=off to skip this check)",
                           failure)
            execution = dataclasses.replace(execution, jit_compile=False)
            model.compile(jit_compile=False, steps_per_execution=execution.steps_per_execution, **compile_arguments)
    return execution
