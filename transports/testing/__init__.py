"""Test kit for transports: private Redis servers, clusters and sentinels.

Everything here is synchronous and starts real ``redis-server`` processes (from
``PATH``) on free loopback ports, for tests and benchmarks:

* :class:`RedisServer`: one server that a test may kill, pause and restart.
* :class:`LocalCluster`: a 3-master, 3-replica Redis Cluster.
* :class:`LocalSentinel`: a master, its replica and one sentinel.

Importing this package does not import pytest; the pytest fixtures live in
:mod:`transports.testing.fixtures` (a plugin), the transport conformance suite in
:mod:`transports.testing.conformance`.
"""

from .servers import (
    PrivateRedis as PrivateRedis,
    RedisServer as RedisServer,
    free_port as free_port,
    ping as ping,
)
from .topologies import (
    LocalCluster as LocalCluster,
    LocalSentinel as LocalSentinel,
    cluster_available as cluster_available,
    shared_cluster as shared_cluster,
    stop_shared_cluster as stop_shared_cluster,
)
