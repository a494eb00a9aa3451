#!/usr/bin/env python3
"""A small real HTTP server for the transfer tests (the Python standard library, no mock
framework): a webhook receiver that fails its first N deliveries, a redirector, files.

    fixture.py RECORD_FILE FILES_DIR     prints "listening PORT" once it accepts

POST /hook?fail=N  answers 500 to the first N requests on that path, then 204; every
                   request is appended to RECORD_FILE as one JSON line (path, headers, body
                   in base64, the answer).
GET /redirect?to=URL   302 to URL.
GET /files/NAME        FILES_DIR/NAME.
GET /endless           a chunked body that never ends (a size bound must stop it).
"""
import base64
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

record_path, files_dir = sys.argv[1], sys.argv[2]
lock = threading.Lock()
seen = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        url = urlparse(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fail = int(parse_qs(url.query).get("fail", ["0"])[0])
        with lock:
            seen[url.path] = seen.get(url.path, 0) + 1
            status = 500 if seen[url.path] <= fail else 204
            with open(record_path, "a") as f:
                f.write(json.dumps({"path": url.path, "headers": dict(self.headers.items()),
                                    "body": base64.b64encode(body).decode(), "status": status}) + "\n")
        self.answer(status)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/redirect":
            self.answer(302, headers=[("Location", parse_qs(url.query)["to"][0])])
        elif url.path.startswith("/files/"):
            path = os.path.join(files_dir, os.path.basename(url.path))
            if not os.path.exists(path):
                return self.answer(404, b"not found")
            with open(path, "rb") as f:
                self.answer(200, f.read())
        elif url.path == "/endless":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"\x89PNG\r\n\x1a\n" + b"\0" * 65528
            try:
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            self.answer(404, b"not found")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening %d" % server.server_address[1], flush=True)
server.serve_forever()
