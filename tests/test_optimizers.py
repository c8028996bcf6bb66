"""Optimizers: LAE's SGD weight decay as PyTorch applies it (in the gradient, through the momentum)."""

import keras
import numpy as np
import pytest

from ssrnet_tf.training import config as config_lib
from ssrnet_tf.training import optimizers


def _pytorch_sgd(weight, gradients, lr, momentum, weight_decay):
    """torch.optim.SGD's update, written out: d = g + wd * w; buf = m * buf + d; w -= lr * buf."""
    buffer = None
    for gradient in gradients:
        d = gradient + weight_decay * weight
        buffer = d if buffer is None else momentum * buffer + d
        weight = weight - lr * buffer
    return weight


def _keras_steps(optimizer, gradients, start=1.0):
    variable = keras.Variable(np.array([start], np.float32))
    for gradient in gradients:
        optimizer.apply_gradients([(np.array([gradient], np.float32), variable)])
    return float(variable.numpy()[0])


def test_coupled_decay_is_pytorch_sgd_and_stronger_than_keras_decoupled():
    """LAE: "a global weight decay parameter of 5e-4" with SGD (momentum 0.9), as PyTorch applies it."""
    gradients = [0.0, 0.0, 0.0]  # decay only: 3 steps at lr 0.1
    want = _pytorch_sgd(1.0, gradients, lr=0.1, momentum=0.9, weight_decay=5e-4)
    coupled = _keras_steps(optimizers.CoupledWeightDecaySGD(0.1, momentum=0.9, l2=5e-4), gradients)
    decoupled = _keras_steps(keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=5e-4), gradients)
    assert coupled == pytest.approx(want, abs=1e-7)
    assert round(want, 5) == 0.99972 and round(decoupled, 5) == 0.99985  # the figures of the issue
    mixed = [0.3, -0.2, 0.1, 0.05]  # with real gradients too
    assert _keras_steps(optimizers.CoupledWeightDecaySGD(0.05, momentum=0.9, l2=1e-2), mixed) == pytest.approx(
        _pytorch_sgd(1.0, mixed, lr=0.05, momentum=0.9, weight_decay=1e-2), abs=1e-6)


def test_config_selects_the_decay_style_and_the_optimizer_serialises():
    options = config_lib.load_config("lae_compact").optimizer
    assert options.weight_decay_style == "coupled"
    optimizer = optimizers.build_optimizer(options, 0.05)
    assert isinstance(optimizer, optimizers.CoupledWeightDecaySGD) and optimizer.l2 == 5e-4
    assert not optimizer.weight_decay
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(again, optimizers.CoupledWeightDecaySGD) and again.l2 == 5e-4
    plain = optimizers.build_optimizer(config_lib.load_config("lae_compact", ["optimizer.weight_decay_style=decoupled"]).optimizer, 0.05)
    assert type(plain) is keras.optimizers.SGD and plain.weight_decay == 5e-4
    with pytest.raises(ValueError, match="one of 'decoupled', 'coupled'"):
        config_lib.load_config("lae_compact", ["optimizer.weight_decay_style=l2"])
    with pytest.raises(ValueError, match="l2="):
        optimizers.CoupledWeightDecaySGD(0.1, weight_decay=1e-4)
