"""The app factory of `recommender serve`'s workers, apart from the app.

With `--workers N`, uvicorn's supervisor pickles a reference to this factory for each worker
process it spawns; the supervisor itself only binds the socket and watches its workers. Keeping
the factory here, with the app imported only when a worker calls it, spares the supervisor the
app's imports (FastAPI, FAISS, SciPy, the routes): about a second of CPU at every start and
70 MB of memory for as long as it runs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from recommender.settings import Settings


def create_logged_app(settings: Settings) -> FastAPI:
    """`create_app` with the service's log lines on stderr: what each worker of `serve` runs."""
    from api.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return create_app(settings)
