"""Print `make demo`'s banner once the API answers /readyz (run in the background by make)."""

from __future__ import annotations

import os
import sys
import time
import urllib.request

API = "http://127.0.0.1:8000"
SITE = "http://127.0.0.1:8001/"
#: The first start loads the index (and, in the background, the model): seconds, not minutes.
WAIT_SECONDS = 300


def ready() -> bool:
    try:
        with urllib.request.urlopen(f"{API}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def main() -> int:
    deadline = time.monotonic() + WAIT_SECONDS
    while not ready():
        if time.monotonic() > deadline:
            print(f"demo: the API at {API} did not become ready", file=sys.stderr)
            return 1
        time.sleep(0.5)
    password = os.environ.get("RECOMMENDER_EDITOR_PASSWORD", "demo")
    print(
        "\n"
        "  Related articles demo is ready (Ctrl-C stops it)\n"
        f"    widget on a publisher's page  {SITE}\n"
        f"    editors' desk                 {API}/editor   (any name, password: {password})\n"
        f"    API and its documentation     {API}/   {API}/docs\n",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
