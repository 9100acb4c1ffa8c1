"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1: serves files at
``/{repo_id}/resolve/{revision}/{filename}`` with the headers huggingface_hub reads, and takes
uploads through the Hub's commit API (repo create, model-card check, preupload, NDJSON commit; every file is
answered as a "regular" upload, so no LFS/Xet storage is needed). Uploaded files are served back."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubServer:
    """Serve ``files`` ({(repo_id, filename): bytes}) for any revision in ``revisions``."""

    def __init__(self, files: dict[tuple[str, str], bytes], revisions: tuple[str, ...] = ("main", COMMIT),
                 token: str | None = None):
        self.files = files
        self.revisions = revisions
        self.token = token  # uploads need "Authorization: Bearer TOKEN" when set
        self.requests: list[str] = []
        self.commits: list[str] = []
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

            def _json(self, obj: dict) -> None:
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                server.requests.append(f"POST {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = self.path.split("?")[0]
                if server.token and self.headers.get("Authorization") != f"Bearer {server.token}":
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path == "/api/validate-yaml":  # the model card's front matter is checked before a commit
                    return self._json({"errors": [], "warnings": []})
                if path == "/api/repos/create":
                    name = json.loads(body)["name"]
                    org = json.loads(body).get("organization")
                    return self._json({"url": f"{server.url}/{org + '/' if org else ''}{name}"})
                parts = path.split("/")  # /api/models/OWNER/NAME/(preupload|commit)/REV
                if len(parts) == 7 and parts[1:3] == ["api", "models"] and parts[5] in ("preupload", "commit"):
                    repo = f"{parts[3]}/{parts[4]}"
                    if parts[5] == "preupload":
                        files = json.loads(body)["files"]
                        return self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                     for f in files]})
                    for line in body.splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            server.files[(repo, item["value"]["path"])] = base64.b64decode(item["value"]["content"])
                    server.commits.append(repo)
                    return self._json({"commitUrl": f"{server.url}/{repo}/commit/{COMMIT}", "commitOid": COMMIT})
                self._missing()

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
