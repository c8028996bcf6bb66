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

#: Where the branches sit: ``"parallel"`` on the pooled backbone features, beside
#: the age head; ``"concatenated"`` the SE-ResNeXt LDL report's design (section 4.6).
DESIGNS = ("parallel", "concatenated")


class MultiTaskHead(base.Head):
    """Gender and race classifiers trained next to an age head.

    Multi-task age/gender/race learning shares the features between the
    tasks, at the cost of two small dense layers; whether the auxiliary
    tasks help the age estimate is what the ``multitask`` ablation study
    measures. Not an age head: it goes next to exactly one age head.

    **Designs.** ``"parallel"``: the branches sit on the pooled backbone
    features, beside the age head. ``"concatenated"``: the SE-ResNeXt LDL
    report's (section 4.6): "we take out the output of the second residual
    block and pass it to a global average pooling layer ... This feature
    vector is then passed to two fully connected layers, one for gender
    recognition (output dimension = 2) and one for ethnicity detection
    (output dimension = 5). The output of these two FC layers and the output
    of the last average pooling layer are then concatenated ..., which will
    be sent into the last FC layer to form a predicted age distribution."
    The "second residual block" of a Keras Applications backbone is taken as
    its last layer at 1/8 of the input resolution (ResNet-50's
    ``conv3_block4_out``, 512 channels, as in the report;
    :func:`ssrnet_tf.models.backbones.build_backbone`), and
    :func:`ssrnet_tf.models.age_model.build_age_model` wires it.

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
        design: ``"parallel"`` or ``"concatenated"`` (see above).
        name: Head name (layer-name prefix).

    Example:
        >>> head = MultiTaskHead()
        >>> sorted(head.build_outputs(keras.Input((32,))))
        ['gender', 'race']

    Reference:
        Multi-task age/gender/race learning with shared features (Gu and
        Yang, "Multi-Task Learning Based Age Detection for Image"; the SE-
        ResNeXt LDL report, section 4.6).
    """

    def __init__(
        self,
        tasks: Sequence[str] = TASKS,
        gender_weight: float = 1.0,
        race_weight: float = 1.0,
        num_gender_classes: int = 2,
        num_race_classes: int = 5,
        design: str = "parallel",
        name: str = "multi_task",
    ):
        super().__init__(name)
        if design not in DESIGNS:
            raise ValueError(f"design must be one of {DESIGNS}, got {design!r}.")
        self.design = design
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
        outputs, _ = self.build_branches(features)
        return outputs

    def build_branches(self, features):
        """The task outputs and the task layers' pre-softmax outputs.

        Returns:
            ``(outputs, logits)``: probabilities keyed by task, and the list
            of ``(batch, classes)`` logits in task order (what the
            ``"concatenated"`` design feeds into the age layer).
        """
        self._check_features(features)
        outputs, logits = {}, []
        for task in self.tasks:
            if self.design == "parallel":  # one softmax Dense, as before
                outputs[task] = keras.layers.Dense(self._classes(task), activation="softmax",
                                                   name=self._layer_name(task))(features)  # (batch, classes)
                continue
            scores = keras.layers.Dense(self._classes(task), name=self._layer_name(f"{task}_fc"))(features)
            logits.append(scores)
            outputs[task] = keras.layers.Softmax(name=self._layer_name(task))(scores)  # (batch, classes)
        return outputs, logits

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
                "design": self.design,
            }
        )
        return config
