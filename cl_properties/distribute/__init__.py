"""Distribution helpers: strategy selection, XLA policy, cross-replica concat, replica queries."""

from cl_properties.distribute.collectives import (
    cross_replica_concat,
    num_replicas_in_sync,
    replica_id,
)
from cl_properties.distribute.strategy import (
    STRATEGIES,
    StrategyConfig,
    check_global_batch,
    choose_strategy,
    describe,
    device_types,
    format_description,
    is_chief,
    jit_policy,
    make_strategy,
    num_workers,
    read_tf_config,
    resolve_jit_compile,
    strategy_kind,
)

__all__ = [
    "cross_replica_concat",
    "num_replicas_in_sync",
    "replica_id",
    "STRATEGIES",
    "StrategyConfig",
    "check_global_batch",
    "choose_strategy",
    "describe",
    "device_types",
    "format_description",
    "is_chief",
    "jit_policy",
    "make_strategy",
    "num_workers",
    "read_tf_config",
    "resolve_jit_compile",
    "strategy_kind",
]
