"""Binding and serving: a socket on the address asked for, uvicorn on it, a browser tab."""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import time
import webbrowser
from typing import Any

from trialsynth.explore.server import build_app
from trialsynth.explore.service import ExploreError, Explorer

#: Host header values accepted when bound to a loopback address (DNS-rebinding guard).
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``(host, port)`` (port 0: a free one).

    Raises
    ------
    ExploreError
        The address cannot be bound (in use, not an address of this machine, ...).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ExploreError(f"--host: cannot resolve {host!r}: {err.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise ExploreError(
            f"cannot listen on {host}:{port}: {err.strerror or err} "
            "(give another --port; --port 0 picks a free one)"
        ) from None
    return sock


def url_of(sock: socket.socket) -> str:
    """The page's URL for a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _server(app: Any) -> Any:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    return uvicorn.Server(config)


def app_for(explorer: Explorer, host: str) -> Any:
    """The app, with Host-header checking when bound to loopback."""
    if not is_loopback(host):
        return build_app(explorer, allowed_hosts=None)
    bound = f"[{host}]" if ":" in host else host
    return build_app(explorer, allowed_hosts=[*LOOPBACK_HOSTS, host, bound])


def serve(explorer: Explorer, *, host: str, port: int, open_browser: bool) -> None:
    """Serve until Ctrl-C (a clean shutdown that also ends a running MCMC job)."""
    sock = bind(host, port)
    url = url_of(sock)
    if not is_loopback(host):
        print(
            f"warning: --host {host}: the explorer is reachable from other machines and has "
            "no authentication; use the default --host 127.0.0.1 unless you mean it",
            file=sys.stderr,
        )
    print(f"trialsynth explore: {url} (Ctrl-C stops)", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        _server(app_for(explorer, host)).run(sockets=[sock])
    finally:
        sock.close()


class Running:
    """A server in a background thread (tests, benchmarks): ``url``, ``app``, ``stop()``."""

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = bind(host, port)
        self.url = url_of(self.sock).rstrip("/")
        self.app = app_for(explorer, host)
        self.server = _server(self.app)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            raise RuntimeError("the explorer's server did not start within 30 s")

    def stop(self) -> None:
        """Shut down (lifespan shutdown: MCMC children terminated) and close the socket."""
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
