"""Running the fake control plane as a real HTTP server on loopback.

A real socket and a real uvicorn (rather than an in-process transport) mean the extractor is
tested through the same httpx transport, timeouts, connection reuse and retries it uses against
a tenant. Two ways to run it:

* :class:`FakeControlPlane`: a context manager for tests; uvicorn runs in a background thread.
* :func:`serve_forever`: blocking, for ``runai-ledger fake-server``; Ctrl-C or SIGTERM stops it.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FrameType, TracebackType

import uvicorn

from runai_extract.fake.app import FakeApi
from runai_extract.fake.config import FakeConfig
from runai_extract.fake.faults import FaultConfig, FaultInjector
from runai_extract.fake.requestlog import RequestLog, RequestRecord
from runai_extract.fake.simulator import TenantSimulator
from runai_extract.fake.tokens import TokenIssuer

STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class FakeControlPlane:
    """A seeded fake tenant behind a loopback HTTP server.

    Building it generates the tenant (a million rows take a few seconds); ``start()`` binds the
    port (0 = any free one) and returns once the server accepts connections.
    """

    def __init__(
        self,
        config: FakeConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.config = config or FakeConfig()
        self.host = host
        self.port = port
        self.tls = tls  # (certificate file, key file): serve https, to test certificate checking
        self.simulator = TenantSimulator(self.config)
        self._faults = FaultInjector(self.config.faults, self.config.seed)
        self._log = RequestLog()
        issuer = TokenIssuer(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            tenant_id=self.config.tenant_id,
        )
        self._issuer = issuer
        self.api = FakeApi(self.simulator, issuer, self._faults, self._log)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeControlPlane:
        if self._thread is not None:
            raise RuntimeError("the fake control plane is already running")
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(server_config(self.api, self.tls))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"fake-runai:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the fake control plane did not start on {self.host}:{self.port}")
            time.sleep(0.005)
        scheme = "https" if self.tls else "http"
        self._base_url = f"{scheme}://{_url_host(self.host)}:{self.port}"
        self.simulator.start_clock()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)

    def __enter__(self) -> FakeControlPlane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what tests look at ---------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("start() the fake control plane first")
        return self._base_url

    @property
    def request_log(self) -> list[RequestRecord]:
        """A snapshot of every request answered so far, oldest first."""
        return self._log.snapshot()

    def requests_to(self, path: str, method: str | None = None) -> int:
        return self._log.count(path, method)

    def peak_in_flight(self, path: str) -> int:
        """The most requests to ``path`` handled at once (a client's real concurrency)."""
        return self._log.peak_in_flight(path)

    def clear_request_log(self) -> None:
        self._log.clear()

    @property
    def faults(self) -> FaultConfig:
        return self._faults.config

    def set_faults(self, faults: FaultConfig) -> None:
        """Swap the per-request fault knobs while running (late arrivals are fixed at build time)."""
        self._faults.set_config(faults)
        self.simulator.set_faults(faults)

    @property
    def injected(self) -> dict[str, int]:
        """Faults injected so far by kind: ``reset``, ``slow``, ``html``, ``truncated``, ``429``, ..."""
        return dict(self._faults.injected)

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (the next data request with one gets a 401)."""
        self._issuer.revoke_all()


def serve_forever(config: FakeConfig, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until Ctrl-C or SIGTERM; prints one line with the base URL once it is listening."""
    plane = FakeControlPlane(config, host, port)
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(plane.api))
    stop_requested: list[int] = []

    def note_signal(signum: int, frame: FrameType | None) -> None:
        # uvicorn re-raises the signal that stopped it after a graceful shutdown; catching it
        # here turns that into a normal return instead of a traceback or a killed process.
        stop_requested.append(signum)

    previous = {sig: signal.signal(sig, note_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        sock.listen()  # connections queue from here on, so the printed URL works at once
        print(f"fake Run:ai control plane listening on http://{_url_host(host)}:{bound_port}", flush=True)
        plane.simulator.start_clock()
        if config.now is None:  # a tenant of "now": its workloads move on with the wall clock
            threading.Thread(target=_follow_wall_clock, args=(plane.simulator,), daemon=True).start()
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()


def _follow_wall_clock(simulator: TenantSimulator, every_s: float = 10.0) -> None:
    """Advance the simulated clock to the wall clock every few seconds (a daemon thread).

    So a long-running `runai-ledger fake-server` (make airflow) shows new workloads, phase changes
    and deletions to hourly syncs, up to ``future_days`` past its start; tests set ``now`` and
    call ``advance()`` themselves instead.
    """
    while True:
        time.sleep(every_s)
        behind = datetime.now(UTC) - simulator.sim_now
        if behind > timedelta(0):
            simulator.advance(behind)


def server_config(api: FakeApi, tls: tuple[str, str] | None = None) -> uvicorn.Config:
    # No websockets, no lifespan, no access log: nothing the fake needs, and fewer warnings.
    return uvicorn.Config(
        api.asgi_app(),
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        date_header=False,  # simdate.py sends Date in simulated time instead
        timeout_graceful_shutdown=2,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts so port 0 resolves to a known port up front."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
