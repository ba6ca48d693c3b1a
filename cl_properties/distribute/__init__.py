"""Distribution helpers: differentiable cross-replica concatenation and replica queries."""
from cl_properties.distribute.collectives import (
    cross_replica_concat,
    num_replicas_in_sync,
    replica_id,
)

__all__ = ["cross_replica_concat", "num_replicas_in_sync", "replica_id"]
