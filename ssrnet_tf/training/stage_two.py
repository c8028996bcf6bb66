"""LAE's second stage: a frozen network whose classifier is re-trained.

Long-tailed Age Estimation decouples representation learning from
classification. Stage 1 trains the whole network on the natural
(long-tailed) distribution; stage 2 keeps its features and re-trains only
the age head's classifier on class-balanced batches with::

    L = L_ld + (L_er - mae)^2

``L_ld`` is the label-distribution loss of the head (DLDL-v2's KL
divergence on ``"age_distribution"``), ``L_er`` each sample's L1 error of the
expected age and ``mae`` stage 1's validation MAE
(:class:`ssrnet_tf.losses.AnchoredMeanAbsoluteError`). The trainer
(:func:`ssrnet_tf.training.trainer.train`) runs it when
``stage_two.enabled``.

Reference:
    Bao et al., "LAE: Long-tailed Age Estimation", arXiv 2110.12741, 2021.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

from ssrnet_tf.heads import base
from ssrnet_tf.losses import AnchoredMeanAbsoluteError


def classifier_layer_names(heads: Sequence[base.Head]) -> Tuple[str, ...]:
    """The layer names of the age head's classifier.

    Args:
        heads: The model's heads (:attr:`ssrnet_tf.models.age_model.AgeTask.heads`).

    Raises:
        ValueError: If the age head names no classifier layer.
    """
    age_head = next(head for head in heads if head.is_age_head)
    names = tuple(age_head.classifier_layer_names)
    if not names:
        raise ValueError(
            f"stage two re-trains the age head's classifier, but head {age_head.name!r} "
            f"({type(age_head).__name__}) has none; use 'label_distribution' or 'dex'."
        )
    return names


def freeze_all_but_classifier(model, heads: Sequence[base.Head]) -> List[str]:
    """Makes only the age head's classifier layers trainable.

    Every other top-level layer (the backbone, a nested model, whose batch
    normalisation then runs in inference mode; the other heads) is frozen.
    Call before ``compile``.

    Args:
        model: The age model.
        heads: Its heads.

    Returns:
        The names of the layers left trainable.

    Raises:
        ValueError: If a classifier layer is missing from ``model``.
    """
    names = classifier_layer_names(heads)
    present = {layer.name for layer in model.layers}
    missing = sorted(set(names) - present)
    if missing:
        raise ValueError(f"classifier layers {missing} are not top-level layers of model {model.name!r}.")
    for layer in model.layers:
        layer.trainable = layer.name in names
    return list(names)


def stage_two_losses(losses: Dict, loss_weights: Dict, anchor_mae: float) -> Tuple[Dict, Dict]:
    """Stage 2's losses: the heads' own, with ``(L_er - mae)^2`` on ``"age"``.

    The age head's distribution loss (``L_ld``) and any other head's losses
    are kept with their weights; the ``"age"`` output's L1 loss becomes
    :class:`AnchoredMeanAbsoluteError` with weight 1.

    Args:
        losses: Stage 1's losses by output name.
        loss_weights: Their weights.
        anchor_mae: Stage 1's validation MAE, years.

    Returns:
        ``(losses, loss_weights)`` for ``compile``.
    """
    losses = {**losses, base.AGE_OUTPUT: AnchoredMeanAbsoluteError(anchor_mae)}
    loss_weights = {**(loss_weights or {}), base.AGE_OUTPUT: 1.0}
    return losses, loss_weights


def stage_two_schedule(config):
    """Stage 2's learning-rate schedule: ``stage_two.schedule`` with the ``schedule`` section's one-cycle shape.

    LAE: "we use an SGD optimizer with a OneCycle schedule over 24 epochs and
    8 epochs in the representation and classification stage" (Bao et al.,
    2021, section 4.2), so ``stage_two.schedule: one_cycle`` gives stage 2 its
    own cycle over its epochs (warm-up share and final divisor from
    ``schedule``); ``constant`` keeps ``stage_two.learning_rate`` throughout.
    """
    return dataclasses.replace(config.schedule, kind=config.stage_two.schedule, milestones=[])
