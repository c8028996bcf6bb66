"""Learning-rate schedules of the seed papers."""

from __future__ import annotations

import math

import keras
from keras import ops

from ssrnet_tf.layers import registration


@registration.register
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle schedule: linear warm-up, then cosine annealing.

    Starts at ``peak / div``, rises linearly to ``peak`` over
    ``warmup_fraction`` of ``total_steps`` and anneals (cosine) to
    ``peak / final_div`` (Smith & Topin, "Super-Convergence", 2019; used by
    the long-tailed age estimation recipe, stage 1).

    Args:
        peak: Highest learning rate.
        total_steps: Steps of the whole run.
        warmup_fraction: Share of the steps spent warming up.
        div: Initial divisor.
        final_div: Final divisor.
    """

    def __init__(self, peak, total_steps, warmup_fraction=0.3, div=25.0, final_div=1e3):
        self.peak = float(peak)
        self.total_steps = max(1, int(total_steps))
        self.warmup_fraction = float(warmup_fraction)
        self.div = float(div)
        self.final_div = float(final_div)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = max(1.0, self.warmup_fraction * self.total_steps)
        low, high, end = self.peak / self.div, self.peak, self.peak / self.final_div
        rising = low + (high - low) * ops.minimum(step / warmup, 1.0)
        progress = ops.clip((step - warmup) / max(1.0, self.total_steps - warmup), 0.0, 1.0)
        falling = end + (high - end) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warmup, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_fraction": self.warmup_fraction,
                "div": self.div, "final_div": self.final_div}


def build_learning_rate(schedule, learning_rate: float, steps_per_epoch: int, epochs: int):
    """The learning rate (float or schedule) for an optimizer.

    Args:
        schedule: A :class:`ssrnet_tf.training.config.ScheduleConfig`.
        learning_rate: Base (or peak) learning rate.
        steps_per_epoch: Optimizer steps per epoch.
        epochs: Epochs of the run.

    Returns:
        A float (``constant``/``plateau``) or a ``LearningRateSchedule``.
        Step-based schedules survive ``--resume`` exactly, since the
        optimizer's step counter is restored with it.
    """
    if schedule.kind == "step":
        # PiecewiseConstantDecay keeps a value while step <= boundary; the optimizer's
        # first step of epoch m is step m * steps_per_epoch, so the boundary is the
        # step before it: every step of epoch m trains with the new rate.
        boundaries = [int(m * steps_per_epoch) - 1 for m in sorted(schedule.milestones)]
        values = [learning_rate * schedule.factor**i for i in range(len(boundaries) + 1)]
        if not boundaries:
            return learning_rate
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    if schedule.kind == "one_cycle":
        return OneCycle(learning_rate, steps_per_epoch * epochs, schedule.warmup_fraction, final_div=schedule.final_div)
    return learning_rate
