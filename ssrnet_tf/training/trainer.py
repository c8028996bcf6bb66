"""Runs an experiment: data, model, resumable training, final evaluation.

A run folder holds everything (``run.output_dir``)::

    config.yaml          the resolved experiment config
    split.json           the seeded train/val/test split (reused on resume)
    input_report_*.json  what each input pipeline read, skipped and used
    backup/              weights + optimizer state + epoch, for --resume
    log.csv              one row per epoch (continuous across resumes)
    tensorboard/         TensorBoard logs
    last.keras           the model after the last completed epoch
    best.keras           the model with the best validation loss
    model.keras          the final model (with its ModelSpec inside)
    summary.json         epochs, wall time and held-out test MAE
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import shutil
import time
from typing import Dict, Optional

import numpy as np

from ssrnet_tf.training import callbacks as run_callbacks
from ssrnet_tf.training import config as config_lib
from ssrnet_tf.training import schedules, strategy as strategy_lib
from ssrnet_tf.utils.atomic import atomic_write_bytes

logger = logging.getLogger(__name__)


def _split_tables(config: config_lib.ExperimentConfig, run_dir: pathlib.Path):
    """Reads the dataset and returns its train/val/test tables (split saved)."""
    from ssrnet_tf.data import sources, splits  # pylint: disable=import-outside-toplevel

    table = sources.read_dataset(config.data.dataset, config.data.path)
    if config.data.limit is not None and config.data.limit < len(table):
        rows = np.random.default_rng(config.data.split_seed).permutation(len(table))[: config.data.limit]
        table = table.take(np.sort(rows))
    split_path = run_dir / "split.json"
    if split_path.is_file():
        split = splits.Split.load(split_path)
    else:
        test = config.data.test_fraction
        val = (1.0 - test) * config.data.val_fraction
        fractions = {"train": 1.0 - test - val, "test": test}
        if val > 0:
            fractions["val"] = val
        split = splits.random_split(table, fractions=fractions, seed=config.data.split_seed)
        split.save(split_path)
    parts = split.select(table)
    return parts["train"], parts.get("val"), parts["test"]


def _optimizer(config: config_lib.ExperimentConfig, learning_rate):
    import keras  # pylint: disable=import-outside-toplevel

    options = config.optimizer
    if options.name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if options.name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=options.weight_decay)
    return keras.optimizers.SGD(learning_rate, momentum=options.momentum, weight_decay=options.weight_decay or None)


@dataclasses.dataclass
class BuiltModel:
    """A model with what compiling and feeding it needs."""

    model: object
    target_encoder: object
    losses: object
    loss_weights: Optional[Dict[str, float]]
    metrics: object
    spec: object
    heads: list


def build_model(config: config_lib.ExperimentConfig) -> BuiltModel:
    """Builds the experiment's model (call inside the strategy scope)."""
    from ssrnet_tf import model_spec  # pylint: disable=import-outside-toplevel

    size = config.model.input_size
    if config.model.architecture == "ssrnet":
        from ssrnet_tf.models import SSRNetConfig, build_ssrnet  # pylint: disable=import-outside-toplevel

        ssr_config = SSRNetConfig(**{"input_shape": (size, size, 3), **config.model.ssrnet})
        model = build_ssrnet(ssr_config)
        spec = model_spec.ModelSpec.for_model(
            model, architecture=f"ssrnet{tuple(ssr_config.stage_bins)}", training_data=f"{config.data.dataset}: {config.data.path}"
        )
        return BuiltModel(model, None, config.model.loss, None, ["mae"], spec, [])
    from ssrnet_tf import heads  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.models.age_model import build_age_model  # pylint: disable=import-outside-toplevel

    age_head = heads.build_head(config.model.head, **config.model.head_kwargs)
    extra = []
    for entry in config.model.extra_heads:
        entry = dict(entry)
        if "head" not in entry:
            raise ValueError(f"model.extra_heads entry {entry} needs a 'head' key naming a registered head.")
        extra.append(heads.build_head(entry.pop("head"), **entry))
    task = build_age_model(
        config.model.backbone, age_head, extra, input_size=size, alpha=config.model.alpha,
        weights=config.model.weights, dropout=config.model.dropout,
    )
    spec = model_spec.ModelSpec.for_model(
        task.model, architecture=f"{config.model.backbone} + {config.model.head}",
        training_data=f"{config.data.dataset}: {config.data.path}",
    )
    return BuiltModel(task.model, task, task.losses(), task.loss_weights(), task.metrics() or None, spec, task.heads)


def _prepare_run_dir(config: config_lib.ExperimentConfig, resume: bool) -> pathlib.Path:
    run_dir = pathlib.Path(config.run.output_dir)
    saved = run_dir / "config.yaml"
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        raise ValueError(
            f"{run_dir}: run folder exists and is not empty; pass --resume to continue it, "
            "or set run.output_dir to a new folder (nothing was overwritten)."
        )
    if resume and saved.is_file():
        stored = config_lib.from_dict(__import__("yaml").safe_load(saved.read_text()), source=str(saved))
        if stored.to_dict() != config.to_dict():
            logger.warning("%s: resuming with the stored config, not the one given now", saved)
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(saved, config.to_yaml().encode())
    return run_dir


def _as_column(dataset):
    """``(images, ages)`` with ages of shape ``(batch, 1)`` like the model output."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    return dataset.map(lambda images, ages: (images, tf.reshape(tf.cast(ages, tf.float32), (-1, 1))))


def predict_ages(model, dataset) -> np.ndarray:
    """Ages ``(N,)`` a model predicts for a dataset's images, in order."""
    outputs = model.predict(dataset.map(lambda images, targets: images), verbose=0)
    if isinstance(outputs, dict):
        outputs = outputs["age"]
    return np.asarray(outputs).reshape(-1)


def train(config: config_lib.ExperimentConfig, resume: bool = False, verbose: int = 1) -> Dict:
    """Trains ``config`` into ``config.run.output_dir`` and evaluates it.

    Args:
        config: The experiment.
        resume: Continue an interrupted run in the same folder from its last
            completed epoch (weights, optimizer state and schedule).
        verbose: Keras progress-bar verbosity.

    Returns:
        The summary written to ``summary.json``.

    Raises:
        ValueError: If the run folder is in use and ``resume`` is false, or
            the config is invalid.
    """
    import keras  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.data import augment as augment_lib, pipeline  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.model_spec import save_keras  # pylint: disable=import-outside-toplevel

    run_dir = _prepare_run_dir(config, resume)
    if resume and (run_dir / "config.yaml").is_file():
        import yaml  # pylint: disable=import-outside-toplevel

        config = config_lib.from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()), source="config.yaml")
    started = time.time()
    keras.utils.set_random_seed(config.run.seed)
    policy = strategy_lib.configure_mixed_precision(config.run.mixed_precision)
    strategy = strategy_lib.choose_strategy(config.run.strategy)
    train_table, val_table, test_table = _split_tables(config, run_dir)

    with strategy.scope():
        built = build_model(config)
    augment = augment_lib.AugmentConfig.from_names(config.data.augment, **config.data.augment_params) if config.data.augment else None
    batch = config.data.batch_size * strategy.num_replicas_in_sync
    train_config = pipeline.PipelineConfig(input_size=config.model.input_size, batch_size=batch, cache=config.data.cache,
                                           augment=augment, seed=config.run.seed)
    make = lambda table, cfg, name: pipeline.make_dataset(table, cfg, target_encoder=built.target_encoder, run_dir=run_dir, name=name)  # noqa: E731
    train_data, train_report = make(train_table, train_config, "train")
    val_data = None
    if val_table is not None and len(val_table):
        val_data, _ = make(val_table, train_config.evaluation(), "val")
    test_data, _ = make(test_table, train_config.evaluation(), "test")
    if built.target_encoder is None:
        train_data, test_data = _as_column(train_data), _as_column(test_data)
        val_data = _as_column(val_data) if val_data is not None else None
    steps = train_report.steps_per_epoch
    fit_steps = None  # a full pass per epoch; Keras re-iterates the dataset
    if config.run.steps_per_epoch:
        steps = fit_steps = min(steps, config.run.steps_per_epoch)
        train_data = train_data.repeat()

    with strategy.scope():
        learning_rate = schedules.build_learning_rate(config.schedule, config.optimizer.learning_rate, steps, config.run.epochs)
        built.model.compile(optimizer=_optimizer(config, learning_rate), loss=built.losses,
                            loss_weights=built.loss_weights, metrics=built.metrics)
    backup_dir = run_dir / "backup"
    callback_list = [
        run_callbacks.AtomicBackupAndRestore(backup_dir),
        run_callbacks.RunLogger(run_dir, built.spec, monitor="val_loss" if val_data is not None else "loss", backup_dir=backup_dir),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard")),
        pipeline.InputReportCallback(train_report),
    ]
    if config.schedule.kind == "plateau":
        callback_list.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss" if val_data is not None else "loss", factor=config.schedule.factor, patience=config.schedule.patience))
    done_before = run_callbacks.completed_epochs(backup_dir)
    built.model.fit(train_data, validation_data=val_data, epochs=config.run.epochs, steps_per_epoch=fit_steps,
                    callbacks=callback_list, verbose=verbose)
    save_keras(built.model, run_dir / "model.keras", built.spec)

    from ssrnet_tf.evaluation import evaluate_predictions  # pylint: disable=import-outside-toplevel

    ages = np.concatenate([np.asarray(t["age"] if isinstance(t, dict) else t).reshape(-1) for _, t in test_data]) \
        if built.target_encoder is None else np.asarray(test_table.age, dtype=np.float32)
    predictions = predict_ages(built.model, test_data)
    report = evaluate_predictions(ages[: len(predictions)], predictions, run_dir / "evaluation",
                                  {"model": str(run_dir / "model.keras"), "data": f"test split of {config.data.path}"})
    test_mae = float(report["mae"])
    summary = {
        "name": config.name, "epochs": config.run.epochs, "resumed_from_epoch": done_before,
        "wall_seconds_this_process": round(time.time() - started, 1), "dtype_policy": policy,
        "replicas": strategy.num_replicas_in_sync, "train_faces": len(train_table),
        "val_faces": 0 if val_table is None else len(val_table), "test_faces": int(len(predictions)),
        "test_mae": round(test_mae, 4), "model": str(run_dir / "model.keras"),
    }
    atomic_write_bytes(run_dir / "summary.json", json.dumps(summary, indent=2).encode())
    if (backup_dir).exists():
        shutil.rmtree(backup_dir, ignore_errors=True)
    print(f"{config.name}: test MAE {test_mae:.3f} years on {len(predictions)} held-out faces; run folder {run_dir}")
    return summary
