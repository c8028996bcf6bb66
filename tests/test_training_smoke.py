"""A short SSR-Net training run on real faces: it learns and stays sane."""

import numpy as np
import pytest

import keras

from ssrnet_tf.data import utkface
from ssrnet_tf.models import build_ssrnet


@pytest.mark.slow
@pytest.mark.parametrize("stage_activation", ["relu", "softmax"])
def test_short_training_lowers_mae(utkface_dir, stage_activation):
    faces, ages, report = utkface.load_utkface_arrays(utkface_dir, limit=256, seed=1)
    assert report["unreadable"] == 0
    keras.utils.set_random_seed(0)
    model = build_ssrnet(stage_activation=stage_activation)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")

    before = np.abs(model.predict(faces, verbose=0)["age"][:, 0] - ages).mean()
    history = model.fit(faces, ages, batch_size=32, epochs=6, verbose=0)
    predictions = model.predict(faces, verbose=0)["age"][:, 0]
    after = np.abs(predictions - ages).mean()

    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(predictions))
    assert predictions.min() >= 0.0
    assert losses[-1] < 0.8 * losses[0], losses
    assert after < 0.8 * before, (before, after)
