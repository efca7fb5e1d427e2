"""The block stages of a reindex on Ray (`--engine ray`): the analyse stage's term counting and
the neighbours stage's searches, pair scores and lists run as `BlockJob`s on Ray actors.

Each job starts its own actors, one per CPU of the cluster. The job's `shared` part (the fitted
signal parts, the vector index, the vectors) is put in the object store once; each actor reads it
on its first block and keeps it, the numpy arrays in it read in place from the node's store, not
copied per block or per actor (the vector index, deserialised, is one copy per actor). Blocks go
round-robin to the actors, at most `IN_FLIGHT_PER_ACTOR` per actor at a time, and their results
are taken in block order, so the driver holds a few blocks at most, as the local engine does.

The actors reserve no CPU: the same run's embedding actors (`ray_encoding`, owned by the caller)
may still hold the cluster's CPUs while idle, and the stages never overlap. They are spread over
the nodes. An actor whose process dies is restarted and its blocks retried by Ray (`RETRIES`);
when the retries run out the stage raises ClusterError and the run stops before writing anything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from index.index_errors import ClusterError
from index.versions.block_executor import LOCAL, B, BlockExecutor, BlockJob, R, S
from index.versions.ray_encoding import RETRIES, RayEncoder, connect
from recommender import fault_points
from recommender.encoding.encoder_protocol import Encoder
from recommender.settings import EncodeEngine, IndexSettings

#: Blocks sent to one actor before the first result is taken: enough to keep it busy while the
#: driver takes the previous result, few enough to bound what the driver holds.
IN_FLIGHT_PER_ACTOR = 2
#: The fault point a worker reaches on starting each block (`recommender.fault_points`).
BLOCK_FAULT_POINT = "ray-worker-block"


class _BlockActor:
    """One worker of a job: reads the job once, runs its blocks."""

    def __init__(self, fault_point: str | None) -> None:
        fault_points.arm(fault_point)  # the driver's, for the crash tests
        self._job: BlockJob[Any, Any, Any] | None = None

    def run(self, stored: list[Any], block: Any) -> Any:
        """`block` of the job `stored` (its reference, in a list so that Ray passes it as it
        is): read from the node's object store on the first block, its arrays in place. A
        restarted actor reads it again; the driver keeps it stored till the last block."""
        fault_points.reached(BLOCK_FAULT_POINT)
        if self._job is None:
            import ray

            self._job = ray.get(stored[0])
        return self._job.run(self._job.shared, block)


class RayBlocks:
    """Blocks run on the Ray cluster at `address` (None: a local instance, started if need be)."""

    def __init__(self, *, address: str | None, actors: int | None = None) -> None:
        self._ray = connect(address)
        self._actors = actors or max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    @property
    def engine(self) -> EncodeEngine:
        return "ray"

    def map(self, job: BlockJob[S, B, R], blocks: Iterable[B]) -> Iterator[R]:
        stored: list[Any] = []  # the job in the object store, once, while blocks run
        actors: list[Any] = []  # started with the first block: a stage with none starts none
        pending: deque[tuple[int, Any]] = deque()
        try:
            for number, block in enumerate(blocks):
                if not actors:
                    stored.append(self._ray.put(job))
                    actors = self._start()
                if len(pending) >= len(actors) * IN_FLIGHT_PER_ACTOR:
                    yield self._result(job, *pending.popleft())
                actor = actors[number % len(actors)]
                pending.append((number, actor.run.remote(stored, block)))
            while pending:
                yield self._result(job, *pending.popleft())
        finally:
            for actor in actors:
                self._ray.kill(actor)

    def _start(self) -> list[Any]:
        # The job goes with each block, not to the constructor: a restarted actor's constructor
        # could not read it again from the store (Ray warns of that), a retried block does.
        actor_class = self._ray.remote(
            num_cpus=0,
            scheduling_strategy="SPREAD",
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
        )(_BlockActor)
        return [actor_class.remote(fault_points.armed()) for _ in range(self._actors)]

    def _result(self, job: BlockJob[S, B, R], number: int, ref: Any) -> R:
        ray = self._ray
        try:
            result: R = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # `run` raised: as it would have locally
            raise exc.cause from None
        except ray.exceptions.RayError as exc:  # the worker, its node or its objects were lost
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClusterError(
                f"the {job.stage} stage on Ray lost block {number + 1}: its worker died and "
                f"Ray's {RETRIES} retries ran out ({reason}); the run stopped, nothing was "
                "published and the served version is untouched"
            ) from None
        return result


def block_executor(settings: IndexSettings) -> BlockExecutor:
    """Where a reindex runs its block stages: on Ray with the ray engine (connecting may start a
    local instance), else in this process."""
    if settings.encode_engine == "ray":
        return RayBlocks(address=settings.ray_address)
    return LOCAL


def encoder_engine(encoder: Encoder) -> EncodeEngine:
    """Where `encoder` embeds: the embed stage's `engine`."""
    return "ray" if isinstance(encoder, RayEncoder) else "local"
