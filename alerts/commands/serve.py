"""``socflow serve``: the analysts' console and its JSON API in one process (uvicorn)."""

from __future__ import annotations

import argparse
import ipaddress

from alerts.errors import AlertsError
from alerts.settings import ConsoleSettings, Settings


class ConsoleError(AlertsError):
    """The console cannot start as configured."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen(options: ConsoleSettings) -> None:
    """Plain HTTP only on loopback; a certificate needs its key and both must exist."""
    if (options.tls_cert is None) != (options.tls_key is None):
        raise ConsoleError("console.tls_cert and console.tls_key go together: set both or neither")
    if options.tls:
        for path in (options.tls_cert, options.tls_key):
            assert path is not None
            if not path.is_file():
                raise ConsoleError(f"TLS file not found: {path}")
        return
    if not is_loopback(options.host):
        raise ConsoleError(
            f"refusing plain HTTP on {options.host}: passwords and session cookies would cross the network in "
            "clear. Set console.tls_cert and console.tls_key (SOCFLOW_CONSOLE__TLS_CERT/__TLS_KEY), or listen "
            "on 127.0.0.1 behind a TLS proxy")


KEEP_ALIVE_S = 75


def handler(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from alerts.api.app import create_app

    updates = {key: value for key, value in (("host", args.host), ("port", args.port)) if value is not None}
    if updates:
        settings = settings.model_copy(update={"console": settings.console.model_copy(update=updates)})
    options = settings.console
    check_listen(options)
    app = create_app(settings)
    scheme = "https" if options.tls else "http"
    print(f"socflow console on {scheme}://{options.host}:{options.port}/")
    if not app.state.console.users.list():
        print("no console users yet: add one with `socflow users add NAME --role admin`")
    uvicorn.run(app, host=options.host, port=options.port, log_level="info" if args.verbose else "warning",
                ssl_certfile=str(options.tls_cert) if options.tls else None,
                ssl_keyfile=str(options.tls_key) if options.tls else None,
                proxy_headers=False, server_header=False, date_header=True,
                # An analyst reads a page for more than uvicorn's 5 s default between requests; a
                # connection closed meanwhile makes the next click race the close (a reset) or
                # pay a new handshake. 75 s is nginx's default keep-alive.
                timeout_keep_alive=KEEP_ALIVE_S)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve the analysts' web console and its JSON API",
        description="Serve the triage console and its JSON API (OpenAPI at /openapi.json). Listens on "
        "console.host:console.port from the settings; HTTPS with console.tls_cert and console.tls_key, plain "
        "HTTP only on a loopback address. Create users first with `socflow users add`.")
    parser.add_argument("--host", help="address to listen on (default: console.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default: console.port, 8765)")
    parser.set_defaults(handler=handler)
