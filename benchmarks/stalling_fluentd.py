"""A stand-in for a stalled fluentd, for `benchmark --fluentd-fault`: it accepts every connection and
never reads from it, so a sender's socket buffers fill and its writes block (what a hung fluentd does)."""

from __future__ import annotations

import socket
import threading


class StallingFluentd:
    """Listens on a free 127.0.0.1 port (`port`) from construction until close()."""

    def __init__(self) -> None:
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, name="stalling-fluentd", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self._server.accept()[0])
            except OSError:  # closed
                return

    def close(self) -> None:
        for conn in [self._server, *self.accepted]:
            conn.close()
