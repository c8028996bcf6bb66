"""Picking a ``tf.distribute`` strategy, and who writes the run folder in a multi-worker run.

============== ==============================================================
``run.strategy`` strategy
============== ==============================================================
``auto``       ``TPUStrategy`` when a TPU is attached (Colab), ``MirroredStrategy``
               with several GPUs, else the default strategy (one GPU or the CPU)
``default``    the default strategy
``mirrored``   ``MirroredStrategy`` over the local GPUs (or the CPU)
``tpu``        ``TPUStrategy`` (an error without a TPU)
``multi_worker`` ``MultiWorkerMirroredStrategy``: one process per machine (or
               per GPU host), the cluster and this process's place in it from
               the ``TF_CONFIG`` environment variable
============== ==============================================================

In a multi-worker run every worker runs the same command with the same
``run.output_dir`` on a shared file system. The *chief* (task ``chief``, or
``worker`` 0 when the cluster has no chief) writes the run folder; the other
workers write their copies of logs, checkpoints and reports to a temporary
folder that is removed when they finish, and restore from the chief's backup
on ``--resume``, so that the run folder has one log, one backup and one model.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Dict, Optional

logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "mirrored", "tpu", "multi_worker")


def _strategy_error(message: str) -> ValueError:
    from ssrnet_tf.errors import ConfigError  # pylint: disable=import-outside-toplevel

    return ConfigError(message)


def tf_config() -> Optional[Dict]:
    """The parsed ``TF_CONFIG`` (``None`` when unset).

    Raises:
        ConfigError: If it is not JSON or lacks ``cluster`` / ``task``, naming
            what is wrong and showing the expected form.
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}')
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise _strategy_error(f"TF_CONFIG is not valid JSON ({error}); expected e.g. {example}") from None
    cluster, task = value.get("cluster") if isinstance(value, dict) else None, value.get("task") if isinstance(value, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise _strategy_error(f"TF_CONFIG needs a 'cluster' and a 'task' with 'type' and 'index'; expected e.g. {example}")
    members = cluster.get(task["type"])
    if not isinstance(members, list) or not 0 <= int(task["index"]) < len(members):
        raise _strategy_error(f"TF_CONFIG: task {task['type']} {task['index']} is not in the cluster {cluster}.")
    return value


def is_chief() -> bool:
    """Whether this process writes the run folder (always, outside a multi-worker cluster)."""
    config = tf_config()
    if config is None:
        return True
    task = config["task"]
    if task["type"] == "chief":
        return True
    return task["type"] == "worker" and int(task["index"]) == 0 and "chief" not in config["cluster"]


def worker_name() -> str:
    """``"worker 1"`` etc. (``"chief"`` / ``"single"`` outside a cluster)."""
    config = tf_config()
    if config is None:
        return "single"
    return f"{config['task']['type']} {config['task']['index']}"


def choose_strategy(name: str = "auto"):
    """Returns a ``tf.distribute.Strategy`` (see the module docstring).

    Create it before anything else runs TensorFlow ops: a multi-worker
    strategy configures the process's collective ops.

    Raises:
        ConfigError: For an unknown name, ``"tpu"`` without a TPU, or
            ``"multi_worker"`` without a valid ``TF_CONFIG``.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    if name not in STRATEGIES:
        raise _strategy_error(f"run.strategy = {name!r} is not allowed: must be one of "
                              f"{', '.join(repr(s) for s in STRATEGIES)}.")
    if name == "multi_worker":
        config = tf_config()
        if config is None:
            raise _strategy_error(
                "run.strategy is 'multi_worker' but TF_CONFIG is not set: every worker needs the cluster and its own "
                "task, e.g. TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
                "\"task\": {\"type\": \"worker\", \"index\": 0}}' (README, \"Training on GPUs, TPUs and several machines\").")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        logger.info("using MultiWorkerMirroredStrategy as %s of %s (%d replicas)", worker_name(),
                    {k: len(v) for k, v in config["cluster"].items()}, strategy.num_replicas_in_sync)
        return strategy
    if name in ("auto", "tpu"):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            logger.info("using TPUStrategy")
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.NotFoundError) as error:
            if name == "tpu":
                raise _strategy_error(f"run.strategy is 'tpu' but no TPU was found ({error}).") from None
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        logger.info("using MirroredStrategy over %d GPUs", len(gpus))
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
