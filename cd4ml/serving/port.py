"""Is the server's port free? Asked before anything else, so a taken port costs one line, not a deploy."""

from __future__ import annotations

import errno
import socket

from cd4ml.errors import ConfigError


def ensure_free(host: str, port: int) -> None:
    """Bind (host, port) as gunicorn will, and let go; ConfigError (exit 2) when something holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: a closed server's TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use (a server you started before?).",
                    f"Stop that server, or choose another port with --port, e.g. --port {port + 1}.",
                ) from None
            raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror}.",
                              "Check [serving] host, or choose another port with --port.") from None
