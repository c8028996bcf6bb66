"""The optimizers of the experiment configs, including SGD with PyTorch's (coupled) weight decay.

Keras' ``SGD(weight_decay=wd)`` *decouples* the decay: it shrinks each
weight by ``lr * wd`` outside the momentum. PyTorch's ``SGD(weight_decay=wd)``,
which the LAE paper trains with ("a global weight decay parameter of
5e-4", Bao et al., 2021, section 4.2), adds ``wd * w`` to the *gradient*,
so the decay is carried through the momentum buffer and, at momentum 0.9,
acts about ten times as strongly in the steady state. ``optimizer.
weight_decay_style: coupled`` selects :class:`CoupledWeightDecaySGD`, which
does what PyTorch does:

    d = g + wd * w;   buf = momentum * buf + d;   w -= lr * buf

(Keras folds ``lr`` into the buffer; with a constant rate the two are the
same update.)
"""

from __future__ import annotations

import keras

WEIGHT_DECAY_STYLES = ("decoupled", "coupled")


@keras.saving.register_keras_serializable(package="ssrnet_tf")
class CoupledWeightDecaySGD(keras.optimizers.SGD):
    """SGD whose weight decay is an L2 term in the gradient, as PyTorch's ``SGD(weight_decay=...)``.

    Args:
        learning_rate: A float or schedule.
        momentum: Momentum (0.9 in LAE).
        l2: The decay ``wd`` added as ``wd * w`` to every trainable
            variable's gradient before the momentum.
        **kwargs: Other ``keras.optimizers.SGD`` arguments (not
            ``weight_decay``).

    Example:
        >>> optimizer = CoupledWeightDecaySGD(0.1, momentum=0.9, l2=5e-4)
        >>> optimizer.l2
        0.0005
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, l2: float = 0.0, **kwargs):
        if kwargs.get("weight_decay"):
            raise ValueError("CoupledWeightDecaySGD takes its decay as l2=, not weight_decay= (Keras' decoupled one).")
        kwargs.pop("weight_decay", None)
        super().__init__(learning_rate=learning_rate, momentum=momentum, **kwargs)
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {l2}.")
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = keras.ops.add(gradient, keras.ops.multiply(keras.ops.cast(self.l2, variable.dtype), variable))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["l2"] = self.l2
        return config


def build_optimizer(options, learning_rate):
    """The Keras optimizer of an ``optimizer`` config section at ``learning_rate`` (a float or schedule).

    Args:
        options: A :class:`ssrnet_tf.training.config.OptimizerConfig`.
        learning_rate: A float or a ``LearningRateSchedule``.
    """
    if options.name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if options.name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=options.weight_decay)
    if options.weight_decay_style == "coupled":
        return CoupledWeightDecaySGD(learning_rate, momentum=options.momentum, l2=options.weight_decay)
    return keras.optimizers.SGD(learning_rate, momentum=options.momentum, weight_decay=options.weight_decay or None)
