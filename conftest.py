"""Shared setup for tests/ and benchmarks/.

TensorFlow must see two logical CPU devices before it initializes, so that
MirroredStrategy tests can compare two replicas with one device in the same process.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
if not tf.config.get_logical_device_configuration(_cpus[0]):
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )


@pytest.fixture(autouse=True)
def _fresh_collective_keys():
    """Gives every test's MirroredStrategy collective keys of its own.

    Each strategy numbers its collectives from the same keys, which TF remembers per
    process: a second strategy with sync BN or all_gather then fails with "Shape mismatch
    in the collective instance". TF documents this private knob as "only set in tests".
    """
    tf.distribute.MirroredStrategy._collective_key_base += 100_000
    yield


@pytest.fixture
def two_cpu_strategy() -> tf.distribute.MirroredStrategy:
    """A MirroredStrategy over the two logical CPU devices."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
