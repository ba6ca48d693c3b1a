"""A keras-cv augmentation layer plugs into the two-view pipeline as a user augmentation.

keras-cv's augmentation layers moved into Keras core, which the built-in augmentations use
(faster here, and keras-cv 0.9's `RandomApply` fails in graph mode); a researcher's own
keras-cv layer still goes in through `AugmentConfig.extra_layers` (the `keras-cv` extra).
"""

import numpy as np
import pytest

from cl_properties.data import AugmentConfig, load_dataset, two_view_dataset

keras_cv = pytest.importorskip("keras_cv")


def _views(extra_layers: tuple) -> np.ndarray:
    source = load_dataset("shapes", "train", image_size=32, num_examples=16)
    augment = AugmentConfig(color_jitter=False, blur=False, extra_layers=extra_layers)
    (view1, view2), labels = next(iter(two_view_dataset(source, augment, batch_size=8, seed=0)))
    assert labels["label"].shape == (8,)
    return np.stack([view1.numpy(), view2.numpy()])


def test_a_keras_cv_layer_augments_both_views():
    jitter = keras_cv.layers.RandomColorJitter(
        value_range=(0, 1),
        brightness_factor=0.3,
        contrast_factor=0.3,
        saturation_factor=(0.2, 0.8),
        hue_factor=0.2,
        seed=0,
    )
    plain, jittered = _views(()), _views((jitter,))
    assert jittered.shape == plain.shape == (2, 8, 32, 32, 3)
    assert np.all(np.isfinite(jittered)) and 0.0 <= jittered.min() and jittered.max() <= 1.0
    # Same crops and flips (the pipeline's seeds), other colours (the layer's).
    assert not np.allclose(jittered, plain)
