"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1: serves files at
``/{repo_id}/resolve/{revision}/{filename}`` with the headers huggingface_hub reads."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubServer:
    """Serve ``files`` ({(repo_id, filename): bytes}) for any revision in ``revisions``."""

    def __init__(self, files: dict[tuple[str, str], bytes], revisions: tuple[str, ...] = ("main", COMMIT)):
        self.files = files
        self.revisions = revisions
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _lookup(self) -> bytes | None:
                server.requests.append(f"{self.command} {self.path}")
                path = self.path.split("?")[0].lstrip("/")
                for (repo, name), data in server.files.items():
                    for rev in server.revisions:
                        if path == f"{repo}/resolve/{rev}/{name}":
                            return data
                return None

            def _headers(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Repo-Commit", COMMIT)
                self.end_headers()

            def _missing(self) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:
                data = self._lookup()
                self._headers(data) if data is not None else self._missing()

            def do_GET(self) -> None:
                data = self._lookup()
                if data is None:
                    return self._missing()
                self._headers(data)
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "HubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
