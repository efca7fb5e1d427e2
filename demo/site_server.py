"""`make demo`'s publisher: demo/site on its own port (another origin than the API), its pages'
links to the API pointed at the API's port.

    python demo/site_server.py API_PORT SITE_PORT
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SITE = Path(__file__).resolve().parent / "site"
HOST = "127.0.0.1"
#: How demo/site's pages name the API (its default port), replaced by the API's address.
API_IN_PAGES = "http://127.0.0.1:8000"


def render_site(into: Path, api: str) -> None:
    """Copy demo/site into `into`, the API in every page at `api`."""
    shutil.copytree(SITE, into, dirs_exist_ok=True)
    for page in into.rglob("*.html"):
        page.write_text(page.read_text(encoding="utf-8").replace(API_IN_PAGES, api), "utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("api_port", type=int)
    parser.add_argument("site_port", type=int)
    args = parser.parse_args(argv)
    # make stops it with SIGTERM: exit through the `with` blocks, so the copy is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with tempfile.TemporaryDirectory(prefix="demo-site-") as directory:
        render_site(Path(directory), f"http://{HOST}:{args.api_port}")
        handler = functools.partial(SimpleHTTPRequestHandler, directory=directory)
        server = ThreadingHTTPServer((HOST, args.site_port), handler)
        with server, contextlib.suppress(KeyboardInterrupt):  # Ctrl-C when run by hand
            server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
