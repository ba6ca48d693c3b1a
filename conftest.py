"""Shared setup for tests/ and benchmarks/.

TensorFlow must see two logical CPU devices before it initializes, so that
MirroredStrategy tests can compare two replicas with one device in the same process.
Under pytest-xdist each worker's TensorFlow gets the machine's cores divided by the workers
(`pytest_configure`), so that the workers do not oversubscribe the cores.
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

_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist: threads per op = cores // workers, set in the environment, which
    TensorFlow reads when it initializes: this process's (not yet initialized here) and
    that of every program it starts.

    On 2 cores two workers with TensorFlow's default pools (one thread per core each) train
    about 12% slower than with one thread each (RandBit, two configurations side by side:
    1500 against 1700 pairs/s). A benchmark then measures seed 0 with the one-thread
    kernels, which every baseline's bands include (`benchmarks/bands.py`); recording
    (`--update-baselines`) keeps the default pools, so that its native runs stay native.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2 or config.getoption("--update-baselines", default=False):
        return
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, threads)


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
