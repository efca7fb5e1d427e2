"""`make demo`'s checks and banner.

    python demo/announce.py check API_PORT SITE_PORT   # before anything starts: are both free?
    python demo/announce.py wait API_PORT SITE_PORT    # in the background: the banner, once ready

`wait` prints the admin token the demo's API runs with (RECOMMENDER_ADMIN_TOKEN, which make sets).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Sequence

HOST = "127.0.0.1"
#: The first start loads the index (and, in the background, the model): seconds, not minutes.
WAIT_SECONDS = 300


def busy_ports(ports: Sequence[int]) -> list[int]:
    """The `ports` of HOST that a server could not listen on now."""
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As uvicorn and http.server bind: a port a previous run left in TIME_WAIT is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError:
                busy.append(port)
    return busy


def port_problem(api_port: int, site_port: int) -> str | None:
    """Why the demo cannot start on these ports; None when it can."""
    if api_port == site_port:
        return f"demo: DEMO_API_PORT and DEMO_SITE_PORT are both {api_port}; give two ports"
    busy = busy_ports([api_port, site_port])
    if not busy:
        return None
    names = {api_port: "DEMO_API_PORT", site_port: "DEMO_SITE_PORT"}
    which = ", ".join(f"{port} ({names[port]})" for port in busy)
    return (
        f"demo: port {which} on {HOST} is already in use (another `make demo`?); stop what "
        f"listens there or choose free ports, e.g. make demo DEMO_API_PORT={api_port + 100} "
        f"DEMO_SITE_PORT={site_port + 100}"
    )


def ready(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def banner(api: str, site: str, password: str, token: str) -> str:
    return (
        "\n"
        "  Related articles demo is ready (Ctrl-C stops it)\n"
        f"    widget on a publisher's page  {site}\n"
        f"    editors' desk                 {api}/editor   (any name, password: {password})\n"
        f"    API and its documentation     {api}/   {api}/docs\n"
        f"    admin token                   {token}\n"
        f"    click-through rates           curl -H 'Authorization: Bearer {token}' "
        f"{api}/v1/stats/ctr\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["check", "wait"])
    parser.add_argument("api_port", type=int)
    parser.add_argument("site_port", type=int)
    args = parser.parse_args(argv)
    if args.action == "check":
        problem = port_problem(args.api_port, args.site_port)
        if problem:
            print(problem, file=sys.stderr)
            return 1
        return 0
    api, site = f"http://{HOST}:{args.api_port}", f"http://{HOST}:{args.site_port}/"
    deadline = time.monotonic() + WAIT_SECONDS
    while not ready(api):
        if time.monotonic() > deadline:
            print(f"demo: the API at {api} did not become ready", file=sys.stderr)
            return 1
        time.sleep(0.5)
    password = os.environ.get("RECOMMENDER_EDITOR_PASSWORD", "demo")
    token = os.environ.get("RECOMMENDER_ADMIN_TOKEN", "(none: click statistics answer 503)")
    print(banner(api, site, password, token), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
