"""gunicorn's sync worker, answering in JSON the requests it refuses before Flask sees them.

gunicorn itself answers a request it cannot parse or that is over its limits (a request line over
4094 bytes, too many or too large headers, a malformed header) with a small HTML page. Every other
error of this server is JSON {"error": ..., "field": ...}; this worker keeps gunicorn's decision
(status, log line, access log) and only rewrites the body it sends.
"""

from __future__ import annotations

import html
import json
import re
import socket
from typing import Any

from gunicorn.workers.sync import SyncWorker

_STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ([^\r\n]*)\r\n")
_MESSAGE = re.compile(rb"</h1>\s*(.*?)\s*</body>", re.S)


class JsonErrorWorker(SyncWorker):
    """SyncWorker whose own error answers (400, 403, 417, 431, 500, 501) are JSON like the app's."""

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        page = _Captured()
        super().handle_error(req, page, addr, exc)  # gunicorn decides and logs; its HTML goes to `page`
        status = _STATUS.match(page.data)
        if status is None:
            return
        code, reason = int(status.group(1)), status.group(2).decode("latin-1")
        found = _MESSAGE.search(page.data)
        detail = html.unescape(found.group(1).decode("latin-1")) if found else ""
        limits = (f"this server takes request lines up to {self.cfg.limit_request_line} bytes and "
                  f"{self.cfg.limit_request_fields} headers of up to {self.cfg.limit_request_field_size} bytes")
        message = f"{reason}: {detail or 'the request could not be read'}. Send a well-formed HTTP/1.1 request; {limits}."
        body = json.dumps({"error": message, "field": None}).encode()
        head = (f"HTTP/1.1 {code} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
                f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1")
        try:
            client.setblocking(False)
            client.sendall(head + body)
        except OSError:
            self.log.debug("Failed to send error message.")
        finally:
            try:
                client.setblocking(True)
            except OSError:
                pass


class _Captured:
    """Stands in for the client socket while gunicorn writes its error page, and keeps the bytes."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.data += data
