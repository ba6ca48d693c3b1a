"""Choosing a tf.distribute strategy, describing it, and deciding on XLA compilation.

One explicit `StrategyConfig` says which strategy to build; `make_strategy` builds it,
`describe` summarizes it for the logs and `results.json`, and `resolve_jit_compile` decides
whether Keras XLA-compiles the train step under it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

# Not in TF's public API; Keras reads it the same way for its own XLA rule.
from tensorflow.python.framework.config import is_op_determinism_enabled

STRATEGIES = ("auto", "tpu", "mirrored", "multi_worker", "default")
TF_CONFIG = "TF_CONFIG"


@dataclass(frozen=True)
class StrategyConfig:
    """Which distribution strategy to run under.

    - "auto": TPU when `tpu` is given; else multi-worker when TF_CONFIG describes a cluster
      of several tasks; else Mirrored over all GPUs when there are any; else the default
      (single-device) strategy.
    - "tpu": TPUStrategy on `tpu` ("local" on a Cloud TPU VM, a TPU name, or grpc://host:port).
    - "mirrored": MirroredStrategy over `devices` (default: all GPUs, else the CPU).
    - "multi_worker": MultiWorkerMirroredStrategy on the cluster in the TF_CONFIG
      environment variable.
    - "default": TensorFlow's default strategy (one device, no replication).
    """

    name: str = "auto"
    tpu: str | None = None
    devices: tuple[str, ...] = ()
    connect_timeout_s: float = 300.0  # multi-worker: how long to wait for every worker to join

    def __post_init__(self):
        if not (
            isinstance(self.connect_timeout_s, (int, float))
            and 0 < self.connect_timeout_s < float("inf")
        ):
            raise ValueError(
                "connect timeout must be a positive number of seconds, got "
                f"{self.connect_timeout_s!r}"
            )
        if self.name not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {self.name!r}; expected one of {', '.join(STRATEGIES)}"
            )
        if self.name == "tpu" and not self.tpu:
            raise ValueError(
                "strategy 'tpu' needs a TPU address: --tpu=local on a Cloud TPU VM, else the TPU "
                "name "
                "or grpc://host:port"
            )
        if self.tpu and self.name not in ("auto", "tpu"):
            raise ValueError(
                f"a TPU address ({self.tpu!r}) is only used with strategy 'tpu' or 'auto', not "
                f"{self.name!r}"
            )
        if self.devices and self.name != "mirrored":
            raise ValueError(f"devices are only used with strategy 'mirrored', not {self.name!r}")


def read_tf_config() -> dict[str, Any] | None:
    """The parsed TF_CONFIG environment variable, or None when unset or empty.

    Raises ValueError, naming TF_CONFIG and the field, when it is not JSON, has no
    "cluster" of lists of "host:port" addresses, or its "task" is not an object whose
    "type" and integer "index" name one of the cluster's tasks.
    """
    raw = os.environ.get(TF_CONFIG, "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError(
            'TF_CONFIG has no "cluster": expected {"cluster": {"worker": [...]}, "task": {...}}'
        )
    for kind, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(
            isinstance(a, str) and ":" in a for a in addresses
        ):
            raise ValueError(
                f'TF_CONFIG "cluster" "{kind}" must be a list of "host:port" strings, got '
                f"{addresses!r}"
            )
    task = config.get("task", {})
    if not isinstance(task, dict):
        raise ValueError(
            f'TF_CONFIG "task" must be an object like {{"type": "worker", "index": 0}}, got '
            f"{task!r}"
        )
    task_type, index = task.get("type"), task.get("index", 0)
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError(f'TF_CONFIG "task" "index" must be an integer, got {index!r}')
    if task_type not in cluster or not 0 <= index < len(cluster[task_type]):
        raise ValueError(f'TF_CONFIG "task" {task} is not one of the cluster\'s tasks {cluster}')
    return config


def _peers(tf_config: dict[str, Any]) -> list[str]:
    """The addresses of the other chief and worker tasks of the cluster."""
    task = tf_config.get("task", {})
    own = (task.get("type"), task.get("index", 0))
    return [
        address
        for kind in ("chief", "worker")
        for index, address in enumerate(tf_config["cluster"].get(kind, []))
        if (kind, index) != own
    ]


# Runs beside a process that waits for its peers: TensorFlow waits in C++ holding the GIL, so
# no thread of that process can time it out, and the SIGTERM handler TensorFlow installs
# meanwhile (its preemption notifier) swallows SIGTERM. Ends when the parent closes its stdin
# (joined, or ended). After the timeout, or on a SIGTERM / SIGINT of its own (sent to the
# process group: Ctrl-C, systemd, Slurm), it names the peers whose ports do not answer and
# kills the parent.
_WATCHDOG = """
import os, select, signal, socket, sys
parent, timeout, peers = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
def stop(message):
    sys.stderr.write(f"error: multi-worker strategy: {message}\\n")
    sys.stderr.flush()
    os.kill(parent, signal.SIGKILL)
    sys.exit(0)
def on_signal(number, frame):
    name = signal.Signals(number).name
    stop(f"stopped by {name} while waiting for worker(s) {', '.join(peers)} to join")
signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
print("ready", flush=True)
if select.select([sys.stdin], [], [], timeout)[0]:
    sys.exit(0)
def answers(address):
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return True
    except OSError:
        return False
silent = [p for p in peers if not answers(p)]
named = ", ".join(silent) if silent else ", ".join(peers) + " (they answer, but did not join)"
stop(
    f"no connection to worker(s) {named} after {timeout:g} s (--multi_worker_timeout); "
    "start every task of TF_CONFIG's cluster, or fix its addresses"
)
"""


@contextlib.contextmanager
def _deadline(peers: list[str], timeout_s: float) -> Iterator[None]:
    """Kills this process (exit status 137) with a one-line error naming the unreachable
    peers when the block runs longer than `timeout_s`, or when a SIGTERM / SIGINT reaches
    the process group meanwhile (see `_WATCHDOG`). Afterwards the SIGTERM handler that was
    in place is restored over TensorFlow's (which only records a preemption notice)."""
    previous = signal.getsignal(signal.SIGTERM)
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout_s), *peers],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    watchdog.stdout.readline()  # its handlers are in place: a signal from now on reaches them
    try:
        yield
    finally:
        watchdog.stdin.close()
        watchdog.wait()
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _cluster_size(tf_config: dict[str, Any] | None) -> int:
    if tf_config is None:
        return 0
    return sum(
        len(tasks) for kind, tasks in tf_config["cluster"].items() if kind in ("chief", "worker")
    )


def choose_strategy(
    config: StrategyConfig, *, tf_config: dict[str, Any] | None, num_gpus: int
) -> str:
    """The concrete strategy name ("tpu", "multi_worker", "mirrored" or "default") that
    `config` selects on a machine with `num_gpus` GPUs and this parsed TF_CONFIG."""
    if config.name != "auto":
        return config.name
    if config.tpu:
        return "tpu"
    if _cluster_size(tf_config) > 1:
        return "multi_worker"
    return "mirrored" if num_gpus else "default"


def make_strategy(config: StrategyConfig) -> tf.distribute.Strategy:
    """Builds the strategy `config` names (see `StrategyConfig` and `choose_strategy`).

    Call it at the start of the program: multi-worker and TPU strategies must be created
    before other TensorFlow operations run. Raises ValueError for "multi_worker" without a
    TF_CONFIG cluster, an invalid TF_CONFIG, a TPU that cannot be found, or "mirrored"
    devices this host lacks. A multi-worker strategy waits for every worker of the cluster
    to join for at most `config.connect_timeout_s`, then kills the process with one line
    naming the workers that never answered (exit status 137); so does a SIGTERM or SIGINT to
    its process group meanwhile (a SIGTERM to this process alone is swallowed by TensorFlow
    while it waits, and acts once the strategy exists).
    """
    tf_config = read_tf_config()
    name = choose_strategy(
        config, tf_config=tf_config, num_gpus=len(tf.config.list_physical_devices("GPU"))
    )
    if name == "tpu":
        # Connects to the TPU workers (nothing to connect for "local") and initializes them.
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver.connect(tpu=config.tpu)
        except Exception as error:  # TF raises several types for a TPU it cannot find or reach
            message = " ".join(str(error).split())[:300]
            raise ValueError(
                f"--tpu={config.tpu}: no TPU found or reachable ({type(error).__name__}: {message})"
            ) from None
        return tf.distribute.TPUStrategy(resolver)
    if name == "multi_worker":
        if tf_config is None:
            raise ValueError(
                "strategy 'multi_worker' reads the cluster from TF_CONFIG, which is not set: "
                'export TF_CONFIG=\'{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}}\' on every host'
            )
        with _deadline(_peers(tf_config), config.connect_timeout_s):
            return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        available = {_device_key(d.name) for d in tf.config.list_logical_devices()}
        missing = [d for d in config.devices if _device_key(d) not in available]
        if missing:
            raise ValueError(f"mirrored devices {missing} do not exist on this host")
        return tf.distribute.MirroredStrategy(list(config.devices) or None)
    return tf.distribute.get_strategy()


def _device_key(name: str) -> tuple[str, int]:
    spec = tf.DeviceSpec.from_string(name)
    return (spec.device_type or "").upper(), spec.device_index or 0


def strategy_kind(strategy: tf.distribute.Strategy) -> str:
    """ "tpu", "multi_worker", "mirrored", "one_device" or "default" (the class family)."""
    if isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy)):
        return "tpu"
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multi_worker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if isinstance(strategy, tf.distribute.OneDeviceStrategy):
        return "one_device"
    return "default"


def _devices(strategy: tf.distribute.Strategy) -> list[str]:
    """The devices the replicas of this worker run on."""
    if strategy_kind(strategy) == "default":
        gpus = tf.config.list_logical_devices("GPU")
        return [gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name]
    return list(strategy.extended.worker_devices)


def device_types(strategy: tf.distribute.Strategy) -> frozenset[str]:
    """The device types ("CPU", "GPU", "TPU") the replicas run on."""
    if strategy_kind(strategy) == "tpu":
        return frozenset({"TPU"})
    return frozenset(tf.DeviceSpec.from_string(d).device_type or "CPU" for d in _devices(strategy))


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Hosts taking part: the cluster's chief + workers (multi-worker), TPU hosts, else 1."""
    kind = strategy_kind(strategy)
    if kind == "multi_worker":
        return _cluster_size({"cluster": strategy.cluster_resolver.cluster_spec().as_dict()}) or 1
    if kind == "tpu":
        return int(strategy.extended.num_hosts)
    return 1


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes shared files (checkpoints, summaries): the "chief" task,
    or worker 0 of a cluster without one; always True outside multi-worker training."""
    if strategy_kind(strategy) != "multi_worker":
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and int(resolver.task_id) == 0 and not has_chief


def check_global_batch(strategy: tf.distribute.Strategy, global_batch: int) -> int:
    """The per-replica batch, global_batch / replicas; ValueError when it does not divide."""
    replicas = strategy.num_replicas_in_sync
    if isinstance(global_batch, bool) or not isinstance(global_batch, int) or global_batch < 1:
        raise ValueError(f"global batch must be a positive int, got {global_batch!r}")
    if global_batch % replicas:
        raise ValueError(
            f"global batch {global_batch} is not divisible by the {replicas} replicas: "
            f"use a multiple of {replicas}"
        )
    return global_batch // replicas


def describe(strategy: tf.distribute.Strategy, global_batch: int) -> dict[str, Any]:
    """A JSON-ready summary: strategy kind and class, replicas, workers, devices (of this
    worker), global and per-replica batch. Raises ValueError when the batch does not divide."""
    per_replica = check_global_batch(strategy, global_batch)
    return {
        "strategy": strategy_kind(strategy),
        "strategy_class": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "workers": num_workers(strategy),
        "devices": _devices(strategy),
        "global_batch": global_batch,
        "per_replica_batch": per_replica,
    }


def format_description(description: dict[str, Any]) -> str:
    """One log line for a `describe` result (plus "jit_compile" when present)."""
    line = (
        f"strategy {description['strategy']} ({description['strategy_class']}): "
        f"{description['replicas']} replica(s) on {description['workers']} worker(s), "
        f"global batch {description['global_batch']} = {description['per_replica_batch']} per "
        "replica"
    )
    if "jit_compile" in description:
        line += f", jit_compile {description['jit_compile']}"
    return line


def jit_policy(
    kind: str,
    devices: frozenset[str] | set[str],
    requested: bool | None,
    *,
    deterministic: bool = False,
) -> bool:
    """Whether Keras should XLA-compile the train step (`compile(jit_compile=...)`).

    requested=None (auto): on for one GPU and for replicated strategies whose devices are
    all GPUs (only there does TF replace the merge_call of the gradient all-reduce, which
    XLA cannot compile, by in-graph collectives); off on CPUs (slow to compile, and a
    replicated step over CPU devices cannot be compiled) and when op determinism is on
    (Keras's own rule); off on TPUs, which compile every step with XLA themselves.
    True/False force it, but forcing it on for a replicated strategy with CPU devices, or off
    on a TPU, raises ValueError.
    """
    if kind == "tpu":
        if requested is False:
            raise ValueError(
                "jit_compile off is impossible on a TPU: TPUs run every step compiled by XLA"
            )
        return bool(requested)
    replicated = kind in ("mirrored", "multi_worker")
    if requested is True and replicated and "CPU" in devices:
        raise ValueError(
            f"jit_compile on is not supported with strategy {kind!r} over CPU devices (TensorFlow "
            "XLA-compiles a replicated step only when all replicas are GPUs): use "
            "--jit_compile=auto or off"
        )
    if requested is not None:
        return requested
    return devices == {"GPU"} and not deterministic


def resolve_jit_compile(strategy: tf.distribute.Strategy, requested: bool | None) -> bool:
    """`jit_policy` for `strategy` on this machine (op determinism read from TensorFlow)."""
    return jit_policy(
        strategy_kind(strategy),
        device_types(strategy),
        requested,
        deterministic=is_op_determinism_enabled(),
    )
