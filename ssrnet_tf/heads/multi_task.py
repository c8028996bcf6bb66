"""Gender and race heads for multi-task age/gender/race learning."""

from __future__ import annotations

from typing import Dict, Mapping, Sequence

import keras
import numpy as np

from ssrnet_tf import losses as ssrnet_losses
from ssrnet_tf.heads import base
from ssrnet_tf.heads import encodings

#: Tasks of :class:`MultiTaskHead`; each is also its output and label name.
TASKS = ("gender", "race")


class MultiTaskHead(base.Head):
    """Gender and race classifiers trained next to an age head.

    Multi-task age/gender/race learning shares the features between the
    tasks; the auxiliary tasks regularise the age features (reported MAE
    2.30 -> 2.23 on MORPH) at the cost of two small dense layers. Not an age
    head: it goes next to exactly one age head.

    **Missing labels.** A gender or race label of ``-1`` means unknown.
    Such samples are masked out of that task's loss
    (:class:`ssrnet_tf.losses.MaskedSparseCategoricalCrossentropy`): the
    loss is the mean over the *labelled* samples of the batch, and a batch
    without any labelled sample gives a loss of 0 (not NaN) and no
    gradient. Datasets with different label sets (e.g. UTKFace with gender
    and race, an age-only set) can therefore be mixed in one batch. A label
    absent from ``encode_targets``' input counts as missing for every sample.
    No accuracy metric is given, since Keras' accuracy would count missing
    labels as errors.

    Outputs:

    * ``"gender"`` (if in ``tasks``): ``(N, num_gender_classes)``
      probabilities; loss weight ``gender_weight``.
    * ``"race"`` (if in ``tasks``): ``(N, num_race_classes)`` probabilities
      (UTKFace: White, Black, Asian, Indian, Others); loss weight
      ``race_weight``.

    Args:
        tasks: The tasks to predict, a non-empty subset of :data:`TASKS`.
        gender_weight: Loss weight of gender.
        race_weight: Loss weight of race.
        num_gender_classes: Number of gender classes.
        num_race_classes: Number of race classes.
        name: Head name (layer-name prefix).

    Example:
        >>> head = MultiTaskHead()
        >>> sorted(head.build_outputs(keras.Input((32,))))
        ['gender', 'race']

    Reference:
        Multi-task age/gender/race learning with shared features (MAE
        2.30 -> 2.23 on MORPH with the auxiliary tasks).
    """

    def __init__(
        self,
        tasks: Sequence[str] = TASKS,
        gender_weight: float = 1.0,
        race_weight: float = 1.0,
        num_gender_classes: int = 2,
        num_race_classes: int = 5,
        name: str = "multi_task",
    ):
        super().__init__(name)
        tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        unknown = [task for task in tasks if task not in TASKS]
        if not tasks or unknown or len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks must be distinct names from {TASKS}, got {tasks}.")
        for label, classes in (("num_gender_classes", num_gender_classes), ("num_race_classes", num_race_classes)):
            if isinstance(classes, bool) or int(classes) != classes or classes < 2:
                raise ValueError(f"{label} must be an integer >= 2, got {classes!r}.")
        self.tasks = tasks
        self.gender_weight = base.check_weight(gender_weight, "gender_weight")
        self.race_weight = base.check_weight(race_weight, "race_weight")
        self.num_gender_classes = int(num_gender_classes)
        self.num_race_classes = int(num_race_classes)

    def _classes(self, task: str) -> int:
        return self.num_gender_classes if task == "gender" else self.num_race_classes

    @property
    def output_names(self) -> tuple:
        return self.tasks

    def build_outputs(self, features):
        self._check_features(features)
        return {
            task: keras.layers.Dense(self._classes(task), activation="softmax", name=self._layer_name(task))(
                features
            )  # (batch, classes)
            for task in self.tasks
        }

    def losses(self) -> Dict[str, keras.losses.Loss]:
        return {
            task: ssrnet_losses.MaskedSparseCategoricalCrossentropy(ignore_label=encodings.MISSING_LABEL)
            for task in self.tasks
        }

    def loss_weights(self) -> Dict[str, float]:
        weights = {"gender": self.gender_weight, "race": self.race_weight}
        return {task: weights[task] for task in self.tasks}

    def encode_targets(self, labels: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        if not labels:
            raise ValueError("labels must hold at least one array (e.g. 'age') to know the number of samples.")
        count = len(np.asarray(next(iter(labels.values()))).reshape(-1))
        targets = {}
        for task in self.tasks:
            if task in labels:
                values = encodings.task_labels(labels[task], self._classes(task), task)
                if len(values) != count:
                    raise ValueError(f"'{task}' has {len(values)} labels, expected {count} like the other labels.")
            else:
                values = np.full(count, encodings.MISSING_LABEL, dtype=np.int32)
            targets[task] = values
        return targets

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "tasks": list(self.tasks),
                "gender_weight": self.gender_weight,
                "race_weight": self.race_weight,
                "num_gender_classes": self.num_gender_classes,
                "num_race_classes": self.num_race_classes,
            }
        )
        return config
