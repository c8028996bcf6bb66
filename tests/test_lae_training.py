"""LAE two-stage long-tailed training: stage-2 loss, freezing, a real two-stage run."""

import csv
import hashlib
import json
import pathlib

import keras
import numpy as np
import pytest

from ssrnet_tf import heads, model_spec
from ssrnet_tf.losses import AnchoredMeanAbsoluteError
from ssrnet_tf.models.age_model import AgeTask, build_age_model
from ssrnet_tf.training import callbacks as run_callbacks
from ssrnet_tf.training import config as config_lib
from ssrnet_tf.training import stage_two

EPSILON = 1e-7  # keras.backend.epsilon(), KLDivergence's clip


def _numpy_stage_two_loss(distribution_true, distribution_pred, ages_true, ages_pred, anchor):
    """L_ld + (L_er - mae)^2 by hand: batch means of the KL and of each sample's squared deviation."""
    q = np.clip(distribution_true.astype(np.float64), EPSILON, 1.0)
    p = np.clip(distribution_pred.astype(np.float64), EPSILON, 1.0)
    kl = np.mean(np.sum(q * np.log(q / p), axis=1))
    errors = np.abs(ages_pred.reshape(-1) - ages_true.reshape(-1))
    return kl + np.mean((errors - anchor) ** 2)


def test_anchored_mae_squares_each_sample_error_as_lae_eq_4():
    # Errors 0.2, 0.5, 1, 6 and mae 1.72: deviations -1.52, -1.22, -0.72, 4.28;
    # squares 2.3104 + 1.4884 + 0.5184 + 18.3184 = 22.6356, mean 5.6589.
    # Squaring the batch mean instead, (1.925 - 1.72)^2 = 0.042, drops the spread.
    ages = np.array([[30.0], [30.0], [30.0], [30.0]], np.float32)
    predictions = np.array([[30.2], [29.5], [31.0], [24.0]], np.float32)
    assert float(AnchoredMeanAbsoluteError(anchor=1.72)(ages, predictions)) == pytest.approx(5.6589, abs=1e-4)
    rng = np.random.default_rng(0)
    ages, predictions = rng.uniform(0, 90, (7, 1)), rng.uniform(0, 90, (7, 1))
    loss = AnchoredMeanAbsoluteError(anchor=4.5)
    expected = np.mean((np.abs(predictions - ages) - 4.5) ** 2)
    assert float(loss(ages.astype(np.float32), predictions.astype(np.float32))) == pytest.approx(expected, rel=1e-5)
    assert float(loss(ages[:, 0].astype(np.float32), predictions.astype(np.float32))) == pytest.approx(expected, rel=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, AnchoredMeanAbsoluteError) and restored.anchor == 4.5
    with pytest.raises(ValueError, match="anchor"):
        AnchoredMeanAbsoluteError(anchor=-1.0)


def test_stage_two_loss_of_a_compiled_ldl_model_matches_numpy():
    keras.utils.set_random_seed(0)
    head = heads.LabelDistributionHead(sigma=2.0, min_age=0, max_age=30)
    features = keras.Input((6,))
    task = AgeTask(keras.Model(features, head.build_outputs(features)), [head])
    losses, loss_weights = stage_two.stage_two_losses(task.losses(), task.loss_weights(), anchor_mae=3.0)
    task.model.compile(optimizer="adam", loss=losses, loss_weights=loss_weights)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 6)).astype(np.float32)
    ages = rng.uniform(0, 30, 10)
    targets = task.encode_targets({"age": ages})
    outputs = task.model.predict(x, verbose=0)
    got = task.model.evaluate(x, targets, batch_size=10, verbose=0, return_dict=True)["loss"]
    expected = _numpy_stage_two_loss(targets["age_distribution"], outputs["age_distribution"], targets["age"],
                                     outputs["age"], anchor=3.0)
    assert got == pytest.approx(expected, rel=1e-4)


def test_freezing_leaves_only_the_age_classifier_trainable():
    task = build_age_model("mobilenet_v3_small", heads.LabelDistributionHead(), [heads.MultiTaskHead()],
                           input_size=32, alpha=0.75, weights=None, dropout=0.2)
    assert task.model.trainable_weights and len(task.model.trainable_weights) > 2
    names = stage_two.freeze_all_but_classifier(task.model, task.heads)
    assert names == ["label_distribution_distribution"]
    classifier = task.model.get_layer("label_distribution_distribution")
    assert [id(w) for w in task.model.trainable_weights] == [id(classifier.kernel), id(classifier.bias)]
    with pytest.raises(ValueError, match="has none"):
        stage_two.classifier_layer_names([heads.RegressionHead()])
    assert stage_two.classifier_layer_names([heads.DEXHead()]) == ("dex_classes",)


def test_stage_two_config_is_checked():
    # LAE's recipe (section 2.1, 2.3, 3.3): sigma 1, lambda 1, SGD one-cycle, weight decay 5e-4,
    # random-resized crop + flip + colour jitter + RandAugment(2, 9).
    for name in ("lae_compact", "lae_mobilenet_v2"):
        config = config_lib.load_config(name)
        assert config.stage_two.enabled and config.schedule.kind == "one_cycle"
        assert (config.model.head, config.model.head_kwargs["sigma"], config.model.head_kwargs["age_loss_weight"]) == \
            ("label_distribution", 1.0, 1.0)
        assert (config.optimizer.name, config.optimizer.weight_decay, config.stage_two.optimizer) == ("sgd", 5e-4, "sgd")
        # "a global weight decay parameter of 5e-4" with PyTorch's SGD: in the gradient, through the momentum.
        assert config.optimizer.weight_decay_style == "coupled"
        # "a OneCycle schedule over 24 epochs and 8 epochs in the representation and classification stage".
        assert (config.stage_two.schedule, config.stage_two.epochs) == ("one_cycle", 8)
        assert config.stage_two.learning_rate == pytest.approx(0.001 * config.data.batch_size / 256)
        assert config.data.augment == ["random_resized_crop", "horizontal_flip", "color_jitter", "rand_augment"]
        assert (config.data.augment_params["rand_augment_ops"], config.data.augment_params["rand_augment_magnitude"]) == \
            (2, 9)
    # The paper's base learning rates scaled by batch / 256 for the pre-trained network.
    assert config.optimizer.learning_rate == pytest.approx(0.005 * 32 / 256)
    assert config.stage_two.learning_rate == pytest.approx(0.001 * 32 / 256)
    ldl = config_lib.load_config("ldl_mobilenet_v2")  # DLDL-v2 report, section 4.5: p = 0.3 each, no crop
    assert ldl.data.augment == ["horizontal_flip", "hsv_shift", "gamma", "brightness_contrast"]
    assert ldl.data.augment_params == {"flip_probability": 0.3}
    with pytest.raises(ValueError, match="backbone"):
        config_lib.load_config("ssrnet", ["stage_two.enabled=true"])
    with pytest.raises(ValueError, match="val_fraction"):
        config_lib.load_config("lae_compact", ["data.val_fraction=0"])
    with pytest.raises(ValueError, match="stage_two.optimizer"):
        config_lib.load_config("lae_compact", ["stage_two.optimizer=rmsprop"])


def _log_epochs(path):
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Killed(RuntimeError):
    """Stands in for a SIGKILL after stage 2's first epoch."""


@pytest.fixture(scope="module")
def interrupted_run(utkface_dir, tmp_path_factory):
    """lae_compact on 200 faces, killed after stage 2's first epoch, then resumed."""
    from ssrnet_tf.training import trainer

    run_dir = tmp_path_factory.mktemp("lae") / "run"
    config = config_lib.load_config("lae_compact", [
        f"data.path={utkface_dir}", "data.limit=200", "data.batch_size=16", "model.input_size=64",
        "run.epochs=1", "run.steps_per_epoch=3", "stage_two.epochs=2", f"run.output_dir={run_dir}",
    ])
    original = run_callbacks.AtomicBackupAndRestore.on_epoch_end

    def dies_in_stage_two(self, epoch, logs=None):
        # The backup is the last file an epoch commits (log and best come first), so
        # dying right after it is "killed after stage 2's first epoch".
        original(self, epoch, logs)
        if pathlib.Path(self.backup_dir).parent.name == "stage2" and epoch == 0:
            raise _Killed("killed after stage 2's first epoch")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_callbacks.AtomicBackupAndRestore, "on_epoch_end", dies_in_stage_two)
        with pytest.raises(_Killed):
            trainer.train(config, verbose=0)
    killed = {
        "summary": json.loads((run_dir / "summary.json").read_text()),
        "stage2_log": _log_epochs(run_dir / "stage2" / "log.csv"),
        "stage2_backup": (run_dir / "stage2" / "backup").is_dir(),
        "digests": {name: _digest(run_dir / name) for name in ("log.csv", "stage1_model.keras")},
    }
    summary = trainer.train(config, resume=True, verbose=0)
    return {"run_dir": run_dir, "config": config, "killed": killed, "summary": summary}


@pytest.mark.slow
def test_two_stage_run_changes_only_the_classifier(interrupted_run):
    run_dir, summary = interrupted_run["run_dir"], interrupted_run["summary"]
    for name in ("config.yaml", "split.json", "log.csv", "best.keras", "last.keras", "stage1_model.keras",
                 "stage1_evaluation/report.json", "stage2/log.csv", "stage2/best.keras", "stage2/last.keras",
                 "stage2/input_report_train.json", "model.keras", "evaluation/report.json", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "backup").exists() and not (run_dir / "stage2" / "backup").exists()
    stage_one, stage_two_results = summary["stage1"], summary["stage2"]
    assert np.isfinite(stage_one["val_mae"]) and np.isfinite(stage_one["test_mae"])
    assert stage_two_results["anchor_mae"] == stage_one["val_mae"]
    assert np.isfinite(stage_two_results["val_mae"]) and summary["test_mae"] == stage_two_results["test_mae"]
    assert stage_two_results["trainable_layers"] == ["label_distribution_distribution"]
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    report = json.loads((run_dir / "stage2" / "input_report_train.json").read_text())
    assert report["sampling"] == "balanced" and report["class_counts"]
    with open(run_dir / "stage2" / "log.csv", newline="") as handle:  # stage 2's own one-cycle schedule
        rates = [float(row["learning_rate"]) for row in csv.DictReader(handle)]
    assert len(set(rates)) == len(rates) > 1, rates

    stage1, _ = model_spec.load_keras(run_dir / "stage1_model.keras")
    final, spec = model_spec.load_keras(run_dir / "model.keras")
    assert spec.input_size == (64, 64)
    changed = []
    for before, after in zip(stage1.layers, final.layers):
        assert before.name == after.name
        if any(not np.array_equal(a, b) for a, b in zip(before.get_weights(), after.get_weights())):
            changed.append(after.name)
    assert changed == ["label_distribution_distribution"]


@pytest.mark.slow
def test_a_run_killed_in_stage_two_resumes_stage_two_only(interrupted_run):
    from ssrnet_tf.training import trainer

    run_dir, killed, summary = interrupted_run["run_dir"], interrupted_run["killed"], interrupted_run["summary"]
    assert "stage1" in killed["summary"] and "stage2" not in killed["summary"]
    assert killed["stage2_log"] == [0] and killed["stage2_backup"]
    assert {name: _digest(run_dir / name) for name in killed["digests"]} == killed["digests"]
    assert _log_epochs(run_dir / "log.csv") == [0] and _log_epochs(run_dir / "stage2" / "log.csv") == [0, 1]
    assert summary["stage2"]["resumed_from_epoch"] == 1 and summary["stage1"] == killed["summary"]["stage1"]
    assert trainer.train(interrupted_run["config"], resume=True, verbose=0) == summary
