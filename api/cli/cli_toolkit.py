"""What every command of the `recommender` console script shares: its one-line failure, its
JSON output, its common options and the one table from domain errors to exit codes.

Exit codes (stable, for schedulers):
    0   success
    1   unexpected error
    2   bad input: unreadable feed, --strict with bad records, a listing over the page limit
        without --allow-partial, bad arguments or settings
    3   no usable index: nothing published, unknown or corrupt version
    4   unknown article slug
    5   the embedding model cannot be loaded
    65  reindex refused before building: it would lose more of the served catalog than
        RECOMMENDER_MAX_SHRINK allows (--allow-shrink overrides), or the data directory's disk
        lacks room for the build (RECOMMENDER_DISK_RESERVE_MB); nothing was published;
        evaluate-policy refused: the impression log lacks support for a ranking's choices
    69  the shared database (RECOMMENDER_DATABASE_URL) cannot be reached; nothing was changed
    74  the data directory cannot be written (disk full?); nothing was published (gc: the
        caches could not be pruned)
    75  another reindex holds the lock (try again later; nothing was changed)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from index.index_errors import (
    CatalogShrinkRefused,
    ClusterError,
    IndexStoreError,
    InsufficientSpace,
    ReindexLocked,
    StorageError,
    StoreUnavailable,
)
from recommender.encoding.encoder_settings import EncoderBackend
from recommender.errors import (
    ArticleNotFound,
    FeedError,
    InvalidQuery,
    LogLacksSupport,
    ModelError,
    RecommenderError,
    StrictModeError,
)
from recommender.settings import EncodeEngine

T = TypeVar("T")

EXIT_CODES: list[tuple[type[RecommenderError], int]] = [
    (ReindexLocked, 75),
    (StorageError, 74),
    (StoreUnavailable, 69),
    (ClusterError, 69),
    (CatalogShrinkRefused, 65),
    (InsufficientSpace, 65),
    (LogLacksSupport, 65),
    (StrictModeError, 2),
    (FeedError, 2),
    (InvalidQuery, 2),
    (IndexStoreError, 3),
    (ArticleNotFound, 4),
    (ModelError, 5),
    (RecommenderError, 1),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `message` as the one error line; the exit (bad input by default) to raise."""
    typer.echo(f"recommender: error: {message}", err=True)
    return typer.Exit(code)


def run_command(action: Callable[[], T]) -> T:
    """Run a command body, turning domain errors into one line and an exit code."""
    # The database driver's and pool's retries would print warnings first: the line says it.
    for name in ("psycopg", "index.state.postgres_database"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        return action()
    except RecommenderError as exc:
        code = next(code for kind, code in EXIT_CODES if isinstance(exc, kind))
        raise fail(str(exc), code) from None
    except OSError as exc:
        raise fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1) from None


def print_json(value: Any) -> None:
    """Print `value` as one line of JSON."""
    typer.echo(orjson.dumps(value).decode())


DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="DIR",
        help="Data directory (default: RECOMMENDER_DATA_DIR or ./.recommender).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
DeviceOption = Annotated[
    str | None,
    typer.Option(
        metavar="DEVICE",
        help="Torch device for embedding: cpu, cuda, mps (default: RECOMMENDER_DEVICE).",
    ),
]
BatchSizeOption = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        min=1,
        max=1024,
        help="Texts per encode call (default: RECOMMENDER_BATCH_SIZE).",
    ),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        metavar="N", min=0, help="Torch threads, per process; 0 = all cores (RECOMMENDER_THREADS)."
    ),
]
BackendOption = Annotated[
    EncoderBackend | None,
    typer.Option(
        help="How the model runs: torch, onnx (same vectors) or onnx-int8 (faster on CPU); "
        "default: RECOMMENDER_ENCODER_BACKEND, else onnx-int8 on cpu and torch on a GPU.",
    ),
]
EngineOption = Annotated[
    EncodeEngine | None,
    typer.Option(
        help="Where texts are embedded, their terms counted and the neighbour lists scored: "
        "local, or ray (Ray actors; RECOMMENDER_RAY_ADDRESS unset = a local Ray instance, auto "
        "or ray://HOST:10001 = a cluster). Default: RECOMMENDER_ENCODE_ENGINE or local.",
    ),
]
ProcessesOption = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        min=0,
        help="Embedding worker processes, each with a model copy; 0 = in process "
        "(RECOMMENDER_ENCODE_PROCESSES). Torch backend only: refused with an ONNX backend.",
    ),
]
