"""The loss registry: every loss by one name with its paper preset, and a new loss added as
one class and one `register_loss` line, its extra term tracked by the model."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from cl_properties.losses import (
    LOSSES,
    ContrastiveLoss,
    LossTerms,
    build_loss,
    loss_arguments,
    register_loss,
)
from cl_properties.models import ProjectionHead, build_encoder
from cl_properties.models.contrastive import ContrastiveModel
from cl_properties.training import LossConfig

# Paper-notes section 1: the five members of the family and their paper settings.
PAPER_PRESETS = {
    "nt_xent": {"method": "nt_xent", "temperature": 0.1, "candidates": "all"},
    "decoupled": {"method": "decoupled", "temperature": 1.0, "lambda_weight": 0.1},
    "swd_hypersphere": {"method": "swd", "prior": "hypersphere", "lambda_weight": 5.0},
    "swd_hypercube": {"method": "swd", "prior": "hypercube", "lambda_weight": 5.0},
    "swd_normal": {"method": "swd", "prior": "normal", "lambda_weight": 5.0},
}


@pytest.mark.parametrize("name", list(PAPER_PRESETS))
def test_every_paper_loss_is_registered_with_its_preset(name):
    assert loss_arguments(name) == PAPER_PRESETS[name]
    loss = build_loss(name, seed=4)
    assert isinstance(loss, ContrastiveLoss) and loss.seed == 4
    assert ContrastiveLoss.from_config(loss.get_config()).get_config() == loss.get_config()
    assert build_loss(name, lambda_weight=2.0, seed=0).lambda_weight == 2.0  # an argument replaced


def test_unknown_names_and_taken_names_are_errors():
    with pytest.raises(ValueError, match="unknown loss 'infonce'; registered: nt_xent"):
        build_loss("infonce")
    with pytest.raises(ValueError, match="'nt_xent' is registered already"):
        register_loss("nt_xent", ContrastiveLoss, "again")


class _WithPenalty:
    """A loss with an extra term: NT-Xent + mean squared embedding of view 1."""

    extra_terms = ("penalty",)

    def __init__(self, weight: float = 1.0, seed: int = 0):
        self.weight, self.base = weight, ContrastiveLoss("nt_xent", seed=seed)

    def __call__(self, z1, z2, step=None) -> LossTerms:
        terms = self.base(z1, z2, step)
        penalty = ops.mean(ops.square(z1))
        return LossTerms(
            terms.loss + self.weight * penalty,
            terms.alignment,
            terms.distribution,
            {"penalty": penalty},
        )


@pytest.fixture
def penalty_loss():
    register_loss("test_penalty", _WithPenalty, "NT-Xent + a penalty (a test)", weight=0.5)
    yield "test_penalty"
    del LOSSES["test_penalty"]


def test_a_new_loss_is_one_class_and_one_line_and_its_extra_term_is_tracked(penalty_loss):
    config = LossConfig(penalty_loss, {"weight": 0.25})
    loss = config.build(seed=0)
    assert isinstance(loss, _WithPenalty) and loss.weight == 0.25
    model = ContrastiveModel(
        build_encoder("convn", input_shape=(8, 8, 1)), ProjectionHead(1, None, 4), loss
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    rng = np.random.default_rng(0)
    views = rng.random((2, 8, 8, 8, 1), dtype=np.float32)
    batches = tf.data.Dataset.from_tensors(((views[0], views[1]), {})).repeat()
    history = model.fit(batches, steps_per_epoch=2, epochs=1, verbose=0).history
    assert {"loss", "alignment", "distribution", "penalty"} <= set(history)
    assert history["penalty"][0] > 0
