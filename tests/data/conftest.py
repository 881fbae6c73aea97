"""Shared fixtures of the dataset tests.

Tests marked ``data`` read the real datasets under ``$MTLKIT_DATA`` and are
skipped, with a reason, when it is unset. Everything else runs on tiny files
the tests write themselves, downloads included (from a local HTTP server).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mtlkit.data import _root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("MTLKIT_DATA"):
        return
    skip = pytest.mark.skip(reason="needs MTLKIT_DATA pointing at the real datasets")
    for item in items:
        if item.get_closest_marker("data") is not None:
            item.add_marker(skip)


@pytest.fixture
def data_root() -> Path:
    """The real data root (only reached by tests marked ``data``)."""
    return Path(os.environ["MTLKIT_DATA"])


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache directory and no remembered checksum verdicts."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MTLKIT_CACHE", str(cache))
    monkeypatch.setattr(_root, "_verdicts", {})
    monkeypatch.setattr(_root, "_unsaved", set())
    monkeypatch.setattr(_root, "_verdicts_loaded", False)
    yield cache


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves the directory; ``/short/<file>`` announces the whole file but sends half of it."""

    def do_GET(self) -> None:
        if not self.path.startswith("/short/"):
            return super().do_GET()
        body = (Path(self.directory) / self.path.removeprefix("/short/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])  # then the connection closes mid-body
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, served directory) of a server on an ephemeral port, shut down after."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
