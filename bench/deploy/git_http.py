"""A git host for the deployer's benchmark: git's smart HTTP (what GitHub speaks), served by
`git http-backend` as a CGI behind a threaded HTTP server, with TCP_NODELAY (git daemon's
small writes stall ~40 ms a round trip on loopback, which no real host does).

Usage: git_http.py ROOT TIMINGS — serves ROOT's repositories at http://127.0.0.1:PORT/NAME.git,
prints `git host listening on http://127.0.0.1:PORT`, and appends each request's
`{"start", "end"}` (Unix seconds) to TIMINGS, so the benchmark can tell the host's time.
"""
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

root, timings_path = sys.argv[1], sys.argv[2]
timings = open(timings_path, "a", encoding="utf-8")
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def serve(self):
        began = time.time()
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "REQUEST_METHOD": self.command,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True
        ).stdout
        head, _, data = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with lock:
            timings.write(json.dumps({"start": began, "end": time.time()}) + "\n")
            timings.flush()

    do_GET = do_POST = serve


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"git host listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
