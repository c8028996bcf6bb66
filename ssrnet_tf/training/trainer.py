"""Runs an experiment: data, model, resumable training, final evaluation.

A run folder holds everything (``run.output_dir``)::

    config.yaml          the resolved experiment config
    split.json           the seeded train/val/test split (reused on resume)
    input_report_*.json  what each input pipeline read, skipped and used
    backup/              weights + optimizer state + epoch, for --resume (the
                         commit of each epoch: see ssrnet_tf.training.callbacks)
    log.csv              one row per epoch (continuous across resumes)
    tensorboard/         TensorBoard logs
    last.keras           the model after the last completed epoch
    best.keras           the model with the best validation loss
    best.json            its epoch and validation loss
    model.keras          the final model (with its ModelSpec inside)
    evaluation/          the final model's report on the test split
    summary.json         epochs, wall time, validation and held-out test MAE

A two-stage (long-tailed, ``stage_two.enabled``) run keeps stage 1's model
as ``stage1_model.keras`` and its report in ``stage1_evaluation/``, and
trains stage 2 (:mod:`ssrnet_tf.training.stage_two`) in ``stage2/``, which
has its own ``input_report_train.json``, ``backup/``, ``log.csv``,
``tensorboard/``, ``last.keras`` and ``best.keras``; ``model.keras``,
``evaluation/`` and the top-level figures of ``summary.json`` are stage
2's, and ``summary.json`` holds both stages under ``stage1`` and
``stage2``. ``--resume`` continues whichever stage was interrupted: stage 1
counts as done once ``summary.json`` records it.
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
from ssrnet_tf.training import execution as execution_lib
from ssrnet_tf.training import initial_weights, precise_batch_norm, run_lock, schedules, stage_two, strategy as strategy_lib
from ssrnet_tf.utils import provenance
from ssrnet_tf.utils.atomic import atomic_write_bytes

logger = logging.getLogger(__name__)


def read_table(config: config_lib.ExperimentConfig):
    """The experiment's whole dataset (a seeded sample of ``data.limit`` faces when set)."""
    from ssrnet_tf.data import sources  # pylint: disable=import-outside-toplevel

    table = sources.read_dataset(config.data.dataset, config.data.path, cli_setting="data.path")
    if config.data.limit is not None and config.data.limit < len(table):
        rows = np.random.default_rng(config.data.split_seed).permutation(len(table))[: config.data.limit]
        table = table.take(np.sort(rows))
    return table


def split_parts(config: config_lib.ExperimentConfig, table, split_path: Optional[pathlib.Path] = None) -> Dict:
    """``{"train", "test"[, "val"]: table}``: the seeded split (read from ``split_path`` if it exists, else saved there)."""
    from ssrnet_tf.data import splits  # pylint: disable=import-outside-toplevel

    if split_path is not None and split_path.is_file():
        split = splits.Split.load(split_path)
    else:
        test = config.data.test_fraction
        val = (1.0 - test) * config.data.val_fraction
        fractions = {"train": 1.0 - test - val, "test": test}
        if val > 0:
            fractions["val"] = val
        split = splits.random_split(table, fractions=fractions, seed=config.data.split_seed)
        if split_path is not None:
            split.save(split_path)
    return split.select(table)


def _split_tables(config: config_lib.ExperimentConfig, run_dir: pathlib.Path):
    """Reads the dataset; returns its train, val and test tables and the whole table (split saved)."""
    table = read_table(config)
    parts = split_parts(config, table, run_dir / "split.json")
    return parts["train"], parts.get("val"), parts["test"], table


def optimizer_for(options: config_lib.OptimizerConfig, learning_rate):
    """The Keras optimizer of an ``optimizer`` config section (:func:`ssrnet_tf.training.optimizers.build_optimizer`)."""
    from ssrnet_tf.training import optimizers  # pylint: disable=import-outside-toplevel

    return optimizers.build_optimizer(options, learning_rate)


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


def _start_from(model, config: config_lib.ExperimentConfig) -> None:
    """Loads ``model.initial_weights`` (fine-tuning), if set."""
    if config.model.initial_weights:
        source = initial_weights.load_initial_weights(model, config.model.initial_weights)
        logger.info("%s: starting from the weights in %s", config.name, source)


def _configured(factory, key: str, *args, **kwargs):
    """``factory(*args, **kwargs)``; a wrong argument is a config error naming ``key``."""
    try:
        return factory(*args, **kwargs)
    except TypeError as error:
        raise config_lib.ConfigError(f"{key}: {error}") from None


def build_model(config: config_lib.ExperimentConfig) -> BuiltModel:
    """Builds the experiment's model (call inside the strategy scope)."""
    from ssrnet_tf import model_spec  # pylint: disable=import-outside-toplevel

    size = config.model.input_size
    if config.model.architecture == "ssrnet":
        from ssrnet_tf.models import SSRNetConfig  # pylint: disable=import-outside-toplevel
        from ssrnet_tf.models.ssrnet import build_ssrnet_task  # pylint: disable=import-outside-toplevel

        ssr_config = _configured(SSRNetConfig, "model.ssrnet", **{"input_shape": (size, size, 3), **config.model.ssrnet})
        task = build_ssrnet_task(ssr_config, loss=config.model.loss)
        architecture = f"ssrnet{tuple(ssr_config.stage_bins)}"
    else:
        task = _backbone_task(config)
        architecture = f"{config.model.backbone} + {config.model.head}"
    _start_from(task.model, config)
    spec = model_spec.ModelSpec.for_model(
        task.model, architecture=architecture, training_data=f"{config.data.dataset}: {config.data.path}"
    )
    return BuiltModel(task.model, task, task.losses(), task.loss_weights(), task.metrics() or None, spec, task.heads)


def _backbone_task(config: config_lib.ExperimentConfig):
    """The experiment's Keras Applications backbone with its heads."""
    from ssrnet_tf import heads  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.models.age_model import build_age_model  # pylint: disable=import-outside-toplevel

    age_head = _configured(heads.build_head, "model.head_kwargs", config.model.head, **config.model.head_kwargs)
    extra = []
    for entry in config.model.extra_heads:
        entry = dict(entry)
        if "head" not in entry:
            raise ValueError(f"model.extra_heads entry {entry} needs a 'head' key naming a registered head.")
        extra.append(_configured(heads.build_head, "model.extra_heads", entry.pop("head"), **entry))
    return build_age_model(
        config.model.backbone, age_head, extra, input_size=config.model.input_size, alpha=config.model.alpha,
        weights=config.model.weights, dropout=config.model.dropout,
        batch_norm_momentum=config.model.batch_norm_momentum,
    )



def _prepare_run_dir(config: config_lib.ExperimentConfig, resume: bool, overrides=()) -> pathlib.Path:
    run_dir = pathlib.Path(config.run.output_dir)
    saved = run_dir / "config.yaml"
    started = run_dir.exists() and not run_lock.holds_only_the_lock(run_dir)
    if started and not resume:
        raise ValueError(
            f"{run_dir}: run folder exists and is not empty; pass --resume to continue it, "
            "or set run.output_dir to a new folder (nothing was overwritten)."
        )
    if resume and started and not saved.is_file():
        raise ValueError(
            f"{run_dir}: not a run folder (it has no config.yaml), so there is nothing to resume; nothing in it was "
            "changed. Set run.output_dir to the run folder to continue, or to a new folder to start a run."
        )
    if resume and saved.is_file():
        run_callbacks.remove_temp_files(run_dir)
        stored = config_lib.load_run_config(saved, overrides)  # re-validated; overrides repair it
        if stored.to_yaml() != saved.read_text():
            atomic_write_bytes(saved, stored.to_yaml().encode())
            logger.warning("%s: rewritten with the overrides given now (%s)", saved, " ".join(overrides))
        if stored.to_dict() != config.to_dict():
            logger.warning("%s: resuming with the stored config, not the one given now", saved)
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(saved, config.to_yaml().encode())
    return run_dir


def predict_ages(model, dataset) -> np.ndarray:
    """Ages ``(N,)`` a model predicts for a dataset's images, in order.

    Under a multi-replica strategy ``model.predict`` would shard the
    dataset across workers; each process predicts all of it locally instead.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    images = dataset.map(lambda images, targets: images)
    if tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1:
        local = tf.function(lambda batch: model(batch, training=False)["age"], reduce_retracing=True)
        return np.concatenate([np.asarray(local(batch)).reshape(-1) for batch in images])
    return np.asarray(model.predict(images, verbose=0)["age"]).reshape(-1)


def _dataset_ages(dataset) -> np.ndarray:
    """The true ages ``(N,)`` of a dataset's targets, in order."""
    return np.concatenate([np.asarray(targets["age"]).reshape(-1) for _, targets in dataset])


@dataclasses.dataclass
class _Inputs:
    """A run's pipelines: how training batches are made, validation and test sets."""

    train_config: object
    val: object
    test: object
    faces: object = None


def open_faces(config: config_lib.ExperimentConfig, table):
    """The decoded-face cache of every file of ``table`` (``None`` unless ``data.cache`` is ``"faces"``)."""
    from ssrnet_tf.data import face_cache  # pylint: disable=import-outside-toplevel

    if config.data.cache != "faces":
        return None
    return face_cache.open_face_cache(table.path.tolist(), config.model.input_size, config.data.cache_dir,
                                      crop=face_cache.crop_settings(config.data.path))


def train_pipeline_config(config: config_lib.ExperimentConfig, replicas: int = 1):
    """The :class:`ssrnet_tf.data.pipeline.PipelineConfig` of the training batches."""
    from ssrnet_tf.data import augment as augment_lib, pipeline  # pylint: disable=import-outside-toplevel

    augment = augment_lib.AugmentConfig.from_names(config.data.augment, **config.data.augment_params) if config.data.augment else None
    return pipeline.PipelineConfig(input_size=config.model.input_size, batch_size=config.data.batch_size * replicas,
                                   cache=config.data.cache, cache_dir=config.data.cache_dir, augment=augment,
                                   seed=config.run.seed)


def _make_inputs(config: config_lib.ExperimentConfig, target_encoder, tables, run_dir: pathlib.Path,
                 replicas: int, faces=None) -> _Inputs:
    """The training pipeline config and the validation and test pipelines."""
    from ssrnet_tf.data import pipeline  # pylint: disable=import-outside-toplevel

    val_table, test_table = tables[1], tables[2]
    train_config = train_pipeline_config(config, replicas)

    def evaluation(table, name):
        dataset, _ = pipeline.make_dataset(table, train_config.evaluation(), target_encoder=target_encoder,
                                           run_dir=run_dir, name=name, faces=faces)
        return dataset

    val_data = evaluation(val_table, "val") if val_table is not None and len(val_table) else None
    return _Inputs(train_config, val_data, evaluation(test_table, "test"), faces)


def _precise_bn_images(config: config_lib.ExperimentConfig, train_table, train_config, run_dir: pathlib.Path,
                       replicas: int, faces=None):
    """A fixed, un-augmented sample of training batches (images only) for precise BN, or ``None``."""
    from ssrnet_tf.data import pipeline  # pylint: disable=import-outside-toplevel

    batches = config.run.precise_bn_batches
    if not batches:
        return None
    if replicas > 1:
        logger.info("precise batch norm is off with %d replicas (moving averages are used)", replicas)
        return None
    rows = np.random.default_rng(config.run.seed).permutation(len(train_table))[: batches * train_config.batch_size]
    dataset, _ = pipeline.make_dataset(train_table.take(np.sort(rows)), train_config.evaluation(), run_dir=run_dir,
                                       name="precise_bn", faces=faces)
    return dataset.map(lambda images, ages: images)


def _fit(built: BuiltModel, run_dir: pathlib.Path, train_data, train_report, val_data, epochs: int,
         steps_per_epoch: Optional[int], plateau: Optional[config_lib.ScheduleConfig], verbose: int,
         precise_bn_images=None, backup_dir: Optional[pathlib.Path] = None, write_backup: bool = True) -> int:
    """Fits a compiled model with the run-folder callbacks; returns the epochs done before.

    ``backup_dir`` (default ``run_dir/backup``) is where the backup is
    restored from and, with ``write_backup``, written to (a multi-worker
    run's other workers restore from the chief's and write none).
    """
    import keras  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.data import pipeline  # pylint: disable=import-outside-toplevel

    monitor = "val_loss" if val_data is not None else "loss"
    backup_dir = backup_dir or run_dir / "backup"
    # Precise BN first: validation and every file saved below see the recalibrated statistics.
    callback_list = [] if precise_bn_images is None else [precise_batch_norm.PreciseBatchNormCallback(precise_bn_images)]
    callback_list += [  # the logger writes log.csv and the best model before the backup commits the epoch
        run_callbacks.StopOnNonFiniteLoss(_peak_rate(built.model)),
        run_callbacks.RunLogger(run_dir, built.spec, monitor=monitor, backup_dir=backup_dir),
        run_callbacks.AtomicBackupAndRestore(backup_dir, write=write_backup),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard")),
        pipeline.InputReportCallback(train_report),
    ]
    if plateau is not None:
        callback_list.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=plateau.factor, patience=plateau.patience))
    done_before = run_callbacks.completed_epochs(backup_dir)
    built.model.fit(train_data, validation_data=val_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                    callbacks=callback_list, verbose=verbose, shuffle=False)  # the pipeline shuffles
    return done_before


def _peak_rate(model) -> float:
    """The largest learning rate of a compiled model's optimizer (a one-cycle peak, a step schedule's first value)."""
    import keras  # pylint: disable=import-outside-toplevel

    schedule = getattr(model.optimizer, "_learning_rate", None)
    if hasattr(schedule, "peak"):
        return float(schedule.peak)
    if hasattr(schedule, "values"):
        return float(max(schedule.values))
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


#: Per-face test results of a run's report (the paired bootstrap of the ablation studies reads them).
TEST_ERRORS = "test_errors.csv"


def write_test_errors(path: pathlib.Path, predictions: np.ndarray, truth: np.ndarray) -> pathlib.Path:
    """``row,predicted,abs_error`` per test face, in the order of the run's test split (``split.json``)."""
    lines = ["row,predicted,abs_error"]
    lines += [f"{row},{p:.4f},{abs(p - t):.4f}" for row, (p, t) in enumerate(zip(predictions.tolist(), truth.tolist()))]
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def _evaluate(model, inputs: _Inputs, model_path: pathlib.Path, report_dir: pathlib.Path,
              config: config_lib.ExperimentConfig) -> Dict:
    """Validation MAE, and the test report written to ``report_dir``."""
    from ssrnet_tf.evaluation import evaluate_predictions  # pylint: disable=import-outside-toplevel

    results = {}
    if inputs.val is not None:
        results["val_mae"] = round(float(np.mean(np.abs(predict_ages(model, inputs.val) - _dataset_ages(inputs.val)))), 4)
    predictions = predict_ages(model, inputs.test)
    truth = _dataset_ages(inputs.test)
    report = evaluate_predictions(truth, predictions, report_dir,
                                  {"model": str(model_path), "data": f"test split of {config.data.path}"})
    write_test_errors(report_dir / TEST_ERRORS, predictions, truth)
    results.update(test_mae=round(float(report["mae"]), 4), test_faces=int(len(predictions)))
    return results


def _plot_learning_curve(log_dir: pathlib.Path, report_dir: pathlib.Path, title: str) -> Optional[str]:
    """``report_dir/learning_curve.png`` from ``log_dir/log.csv`` (train/val MAE, learning rate)."""
    from ssrnet_tf.evaluation import learning_curve  # pylint: disable=import-outside-toplevel

    if not (log_dir / "log.csv").is_file():
        return None
    path = learning_curve.plot_learning_curve(log_dir / "log.csv", report_dir / "learning_curve.png", title)
    return None if path is None else str(path)


def _write_summary(run_dir: pathlib.Path, summary: Dict) -> None:
    atomic_write_bytes(run_dir / "summary.json", json.dumps(summary, indent=2).encode())


#: The commit that started a run (kept across resumes, copied into summary.json).
CODE_FILE = "code.json"


def previous_code(run_dir: pathlib.Path) -> Optional[Dict]:
    """The code version recorded when the run in ``run_dir`` started (``None`` if none was)."""
    path = run_dir / CODE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _read_summary(run_dir: pathlib.Path) -> Dict:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def train(config: config_lib.ExperimentConfig, resume: bool = False, verbose: int = 1, overrides=()) -> Dict:
    """Trains ``config`` into ``config.run.output_dir`` and evaluates it.

    With ``stage_two.enabled`` the run has two stages (see the module
    docstring and :mod:`ssrnet_tf.training.stage_two`). With
    ``run.strategy: multi_worker`` every worker calls this with the same
    config; only the chief writes the run folder
    (:mod:`ssrnet_tf.training.strategy`).

    Args:
        config: The experiment.
        resume: Continue an interrupted run in the same folder from its last
            completed epoch (weights, optimizer state and schedule); a
            two-stage run interrupted in stage 2 continues stage 2.
        verbose: Keras progress-bar verbosity.
        overrides: ``section.key=value`` strings given with ``resume``:
            applied to the stored ``config.yaml`` (which is re-validated and
            rewritten), so a stored value can be corrected.

    Returns:
        The summary written to ``summary.json``.

    Raises:
        ValueError: If the run folder is in use and ``resume`` is false, or
            the config is invalid.
    """
    strategy = strategy_lib.choose_strategy(config.run.strategy)  # first: a multi-worker strategy sets up collectives
    if config.run.strategy == "multi_worker" and not strategy_lib.is_chief():
        return _train_as_worker(config, resume, verbose, overrides, strategy)
    with run_lock.run_lock(config.run.output_dir):  # one process per run folder
        return _train(config, resume, verbose, overrides, strategy)


def _train_as_worker(config: config_lib.ExperimentConfig, resume: bool, verbose: int, overrides, strategy) -> Dict:
    """A non-chief worker: trains in step with the chief, writes to a temporary folder, restores from the chief's backup."""
    import tempfile  # pylint: disable=import-outside-toplevel

    home = pathlib.Path(config.run.output_dir)
    if resume and (home / "config.yaml").is_file():
        config = config_lib.load_run_config(home / "config.yaml", overrides)
    if resume and _is_done(home, config):
        print(f"{config.name}: the run is done ({home / 'summary.json'}); nothing to resume ({strategy_lib.worker_name()})")
        return _read_summary(home)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="ssrnet_tf_worker_"))
    try:
        for name in ("split.json", "summary.json", "stage1_model.keras"):  # the split, and a finished stage 1
            if (home / name).is_file():
                shutil.copy(home / name, scratch / name)
        atomic_write_bytes(scratch / "config.yaml", dataclasses.replace(
            config, run=dataclasses.replace(config.run, output_dir=str(scratch))).to_yaml().encode())
        worker = dataclasses.replace(config, run=dataclasses.replace(config.run, output_dir=str(scratch)))
        # "resume" in its own scratch folder: what was copied there is the chief's, the rest is written anew.
        return _train(worker, True, verbose, (), strategy, backup_home=home)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _is_done(run_dir: pathlib.Path, config: config_lib.ExperimentConfig) -> bool:
    summary = _read_summary(run_dir)
    return "stage2" in summary if config.stage_two.enabled else "test_mae" in summary


def _train(config: config_lib.ExperimentConfig, resume: bool, verbose: int, overrides, strategy,
           backup_home: Optional[pathlib.Path] = None) -> Dict:
    """:func:`train` in this process's run folder (``backup_home``: where the backup lives, if not there)."""
    import keras  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.data import pipeline  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.model_spec import save_keras  # pylint: disable=import-outside-toplevel

    run_dir = _prepare_run_dir(config, resume, overrides)
    if resume and (run_dir / "config.yaml").is_file():
        config = config_lib.load_run_config(run_dir / "config.yaml")
    started = time.time()
    two_stage = config.stage_two.enabled
    previous = _read_summary(run_dir) if resume and two_stage else {}
    if "stage2" in previous:
        print(f"{config.name}: both stages are done; nothing to resume in {run_dir}")
        return previous
    if resume and not two_stage and (run_dir / "summary.json").is_file():
        print(f"{config.name}: the run is done (summary.json); nothing to resume in {run_dir}")
        return _read_summary(run_dir)
    keras.utils.set_random_seed(config.run.seed)
    write_backup, backup_home = backup_home is None, backup_home or run_dir
    code = previous_code(run_dir) if resume else None
    code = code or provenance.code_version()  # the commit that trains it (on resume: the one that started it)
    execution = execution_lib.resolve_execution(config.run.jit_compile, config.run.mixed_precision,
                                                config.run.steps_per_execution, execution_lib.device_kind(strategy))
    policy = execution_lib.set_precision(execution.mixed_precision)
    tables = _split_tables(config, run_dir)
    train_table, val_table = tables[0], tables[1]
    faces = open_faces(config, tables[3])
    replicas = strategy.num_replicas_in_sync
    summary = {"name": config.name, "epochs": config.run.epochs, "code": code}
    atomic_write_bytes(run_dir / CODE_FILE, json.dumps(code).encode())

    if "stage1" in previous:
        summary, stage_one, inputs = previous, previous["stage1"], None
        print(f"{config.name}: stage 1 is done (validation MAE {stage_one['val_mae']:.3f}); resuming stage 2")
    else:
        with strategy.scope():
            built = build_model(config)
        inputs = _make_inputs(config, built.target_encoder, tables, run_dir, replicas, faces)
        train_data, train_report = pipeline.make_dataset(train_table, inputs.train_config, target_encoder=built.target_encoder,
                                                         run_dir=run_dir, name="train", faces=faces)
        steps = train_report.steps_per_epoch
        fit_steps = None  # a full pass per epoch; Keras re-iterates the dataset
        if config.run.steps_per_epoch:
            steps = fit_steps = min(steps, config.run.steps_per_epoch)
            train_data = train_data.repeat()
        with strategy.scope():
            learning_rate = schedules.build_learning_rate(config.schedule, config.optimizer.learning_rate, steps, config.run.epochs)
            execution = execution_lib.compile_model(
                built.model, execution, train_data, optimizer=optimizer_for(config.optimizer, learning_rate),
                loss=built.losses, loss_weights=built.loss_weights, metrics=built.metrics)
        logger.info("%s: %s", config.name, execution.describe())
        plateau = config.schedule if config.schedule.kind == "plateau" else None
        precise_bn_images = _precise_bn_images(config, train_table, inputs.train_config, run_dir, replicas, faces)
        done_before = _fit(built, run_dir, train_data, train_report, inputs.val, config.run.epochs, fit_steps, plateau,
                           verbose, precise_bn_images, backup_dir=backup_home / "backup", write_backup=write_backup)
        model_path = run_dir / ("stage1_model.keras" if two_stage else "model.keras")
        save_keras(built.model, model_path, built.spec)
        report_dir = run_dir / ("stage1_evaluation" if two_stage else "evaluation")
        results = _evaluate(built.model, inputs, model_path, report_dir, config)
        results["learning_curve"] = _plot_learning_curve(run_dir, report_dir, config.name)
        summary.update({
            "resumed_from_epoch": done_before, "wall_seconds_this_process": round(time.time() - started, 1),
            "dtype_policy": policy, "execution": execution.to_dict(), "replicas": replicas,
            "train_faces": len(train_table),
            "val_faces": 0 if val_table is None else len(val_table), "test_faces": results["test_faces"],
            "val_mae": results.get("val_mae"), "test_mae": results["test_mae"], "model": str(model_path),
            "learning_curve": results["learning_curve"],
        })
        if two_stage:
            stage_one = {"epochs": config.run.epochs, "resumed_from_epoch": done_before, **results, "model": str(model_path)}
            summary["stage1"] = stage_one
        _write_summary(run_dir, summary)
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        run_callbacks.remove_temp_files(run_dir)
        stage = "stage 1: " if two_stage else ""
        print(f"{config.name}: {stage}test MAE {results['test_mae']:.3f} years on {results['test_faces']} held-out faces; "
              f"run folder {run_dir}")
        if not two_stage:
            return summary

    stage_two_results = _train_stage_two(config, strategy, tables, run_dir, stage_one, inputs, verbose, execution, faces,
                                         backup_home, write_backup)
    summary.update({
        "wall_seconds_this_process": round(time.time() - started, 1), "dtype_policy": policy, "replicas": replicas,
        "train_faces": len(train_table), "val_faces": 0 if val_table is None else len(val_table),
        "test_faces": stage_two_results["test_faces"], "val_mae": stage_two_results["val_mae"],
        "test_mae": stage_two_results["test_mae"], "model": stage_two_results["model"],
        "stage1": stage_one, "stage2": stage_two_results,
    })
    _write_summary(run_dir, summary)
    shutil.rmtree(run_dir / "stage2" / "backup", ignore_errors=True)
    run_callbacks.remove_temp_files(run_dir)
    print(f"{config.name}: stage 2: test MAE {summary['test_mae']:.3f} years (stage 1: {stage_one['test_mae']:.3f}) "
          f"on {summary['test_faces']} held-out faces; run folder {run_dir}")
    return summary


def _train_stage_two(config: config_lib.ExperimentConfig, strategy, tables, run_dir: pathlib.Path, stage_one: Dict,
                     inputs: Optional[_Inputs], verbose: int, execution, faces=None,
                     backup_home: Optional[pathlib.Path] = None, write_backup: bool = True) -> Dict:
    """Stage 2 in ``run_dir/stage2``: stage 1's model, classifier only, balanced batches.

    Returns:
        Stage 2's figures for ``summary.json``.
    """
    from ssrnet_tf.data import pipeline  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.model_spec import save_keras  # pylint: disable=import-outside-toplevel

    options = config.stage_two
    stage_dir = run_dir / "stage2"
    stage_dir.mkdir(exist_ok=True)
    if stage_one.get("val_mae") is None:
        raise ValueError(f"{run_dir}: stage 2 needs stage 1's validation MAE, but the validation split is empty.")
    anchor = float(stage_one["val_mae"])
    # Stage 1's weights replace the backbone's, so none are loaded here.
    unweighted = dataclasses.replace(config, model=dataclasses.replace(config.model, weights=None, initial_weights=None))
    with strategy.scope():
        built = build_model(unweighted)
        built.model.load_weights(run_dir / "stage1_model.keras")
        trainable = stage_two.freeze_all_but_classifier(built.model, built.heads)
        losses, loss_weights = stage_two.stage_two_losses(built.losses, built.loss_weights, anchor)
    if inputs is None:
        inputs = _make_inputs(config, built.target_encoder, tables, run_dir, strategy.num_replicas_in_sync, faces)
    balanced = dataclasses.replace(inputs.train_config, sampling="balanced", class_bin_width=options.class_bin_width)
    train_data, train_report = pipeline.make_dataset(tables[0], balanced, target_encoder=built.target_encoder,
                                                     run_dir=stage_dir, name="train", faces=inputs.faces)
    steps = options.steps_per_epoch or train_report.steps_per_epoch
    if config.run.steps_per_epoch:
        steps = min(steps, config.run.steps_per_epoch)
    with strategy.scope():
        rate = schedules.build_learning_rate(stage_two.stage_two_schedule(config), options.learning_rate, steps,
                                             options.epochs)
        optimizer = optimizer_for(dataclasses.replace(config.optimizer, name=options.optimizer), rate)
        execution_lib.compile_model(built.model, execution, train_data, optimizer=optimizer, loss=losses,
                                    loss_weights=loss_weights, metrics=built.metrics)
    done_before = _fit(built, stage_dir, train_data, train_report, inputs.val, options.epochs, steps, None, verbose,
                       backup_dir=(backup_home or run_dir) / "stage2" / "backup", write_backup=write_backup)
    model_path = run_dir / "model.keras"
    save_keras(built.model, model_path, built.spec)
    results = _evaluate(built.model, inputs, model_path, run_dir / "evaluation", config)
    results["learning_curve"] = _plot_learning_curve(stage_dir, run_dir / "evaluation", f"{config.name}: stage 2")
    return {"epochs": options.epochs, "resumed_from_epoch": done_before, "anchor_mae": anchor,
            "trainable_layers": trainable, **results, "model": str(model_path)}
