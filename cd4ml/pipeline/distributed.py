"""The scale path's scan on a Dask cluster: the same stage functions, run by Dask workers.

Each partition of the data is one task, `scale.scan_partition`: the worker reads its byte range
of train.csv, runs the batch stages and scans the result into a Partial. Partials are then
merged pairwise on the workers (`scale.merge`, exact and order-free), so only the final one
travels to this process; training happens here, on the sample, as in a run without Dask. Same
data, same settings: the same Partial, sample, model and metrics as one process gives.

The workers must see the data at the same path as this process (a shared disk, or the same
volume mounted in every container; see the `dask` profile in docker-compose.yml) and run the
same version of this code (the project's image).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from cd4ml.errors import ServiceUnreachable
from cd4ml.pipeline.scale import Partial, PartitionSource, ScanSpec, merge, scan_partition

LOCAL = "local"  # [scale] dask_scheduler = "local": a LocalCluster in this process's machine
CONNECT_SECONDS = 20


@contextmanager
def dask_client(address: str, workers: int = 2, memory_limit: str = "1GiB",
                timeout: float = CONNECT_SECONDS) -> Iterator[object]:
    """A client of the scheduler at `address`, or of a LocalCluster (`workers` processes of one
    thread each) when address is "local"; closed on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is in requirements.txt
        raise ServiceUnreachable("Dask is not installed", "pip install -r requirements.txt") from None
    if address == LOCAL:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, memory_limit=memory_limit,
            dashboard_address=":0", silence_logs=40,  # its HTTP server on a free port
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as err:
        raise ServiceUnreachable(
            f"cannot reach the Dask scheduler at {address}: {err}",
            "Start it (docker compose --profile dask up -d), or unset [scale] dask_scheduler / "
            "DASK_SCHEDULER_ADDRESS to scan in this process.",
        ) from None
    try:
        yield client
    finally:
        client.close()


def scan_on_dask(
    client, source: PartitionSource, spec: ScanSpec, indices: list[int] | None = None,
    on_done: Callable[[int], None] | None = None,
) -> Partial:
    """Scan the partitions as Dask tasks and merge their Partials on the workers."""
    from distributed import as_completed

    indices = list(range(len(source))) if indices is None else list(indices)
    if not indices:
        return Partial()
    [shared] = client.scatter([source], broadcast=True)
    futures = client.map(scan_partition, [shared] * len(indices), [spec] * len(indices), indices,
                         pure=False, key=[f"scan-{i}" for i in indices])
    pending: list = []
    for done, future in enumerate(as_completed(futures), start=1):  # merge pairs as they finish
        if on_done:
            on_done(done)
        pending.append(future)
        while len(pending) >= 2:
            a, b = pending.pop(), pending.pop()
            pending.insert(0, client.submit(merge, a, b, spec, pure=False))
    while len(pending) > 1:
        a, b = pending.pop(), pending.pop()
        pending.insert(0, client.submit(merge, a, b, spec, pure=False))
    return pending[0].result()
