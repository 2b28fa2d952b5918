"""The page's server for tests: the app on a free localhost port in a thread, and a client keeping its cookie."""

from __future__ import annotations

import http.cookiejar
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import uvicorn

START_TIMEOUT_S = 30.0


class ServedApp:
    """Serves ``app`` on ``127.0.0.1`` (a free port) while the ``with`` block runs; ``url`` is its address."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(START_TIMEOUT_S)


class PageClient:
    """A browser's requests without the browser: one cookie jar (one web session)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        """The value of cookie ``name``."""
        (value,) = [c.value for c in self.jar if c.name == name]
        return value

    def request(self, path: str, data: bytes | None = None, method: str | None = None) -> tuple[int, bytes, str]:
        """(status, body, content type) of one request."""
        request = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with self.opener.open(request) as response:
                return response.status, response.read(), response.headers.get("content-type", "")
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers.get("content-type", "")

    def json(self, path: str, payload: Any = None, method: str = "POST", raw: bytes | None = None) -> tuple[int, Any]:
        """(status, decoded JSON) of a request sending ``payload`` as JSON (or ``raw`` bytes)."""
        body = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
        status, data, _ = self.request(path, body, method)
        return status, json.loads(data)
