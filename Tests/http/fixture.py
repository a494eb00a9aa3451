#!/usr/bin/env python3
"""A small real HTTP server for the transfer tests (the Python standard library, no mock
framework): a webhook receiver that fails its first N deliveries, a redirector, files.

    fixture.py RECORD_FILE FILES_DIR     prints "listening PORT", then "stalling PORT"

A second port accepts connections and never answers (a store that hangs). With
WEBHOOK_SECRET (whsec_...) in the environment, each POST is also verified the Standard
Webhooks way here, independently of the worker's code: "verified" in the record.

POST /hook?fail=N  answers 500 to the first N requests on that path, then 204; every
                   request is appended to RECORD_FILE as one JSON line (path, headers, body
                   in base64, the answer).
GET /redirect?to=URL   302 to URL.
GET /files/NAME        FILES_DIR/NAME.
GET /endless           a chunked body that never ends (a size bound must stop it).
"""
import base64
import hashlib
import hmac
import json
import socket
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

record_path, files_dir = sys.argv[1], sys.argv[2]
lock = threading.Lock()
seen = {}


def verify(headers, body):
    """Standard Webhooks: v1 = base64(HMAC-SHA256(key, id.timestamp.body)), key = base64 after whsec_."""
    secret = os.environ.get("WEBHOOK_SECRET")
    if not secret:
        return None
    key = base64.b64decode(secret[len("whsec_"):])
    signed = "%s.%s." % (headers.get("webhook-id"), headers.get("webhook-timestamp"))
    expected = base64.b64encode(hmac.new(key, signed.encode() + body, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(sig.split(",", 1)[-1], expected) for sig in (headers.get("webhook-signature") or "").split())


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
                                    "body": base64.b64encode(body).decode(), "status": status,
                                    "verified": verify(self.headers, body)}) + "\n")
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
stall = socket.socket()
stall.bind(("127.0.0.1", 0))
stall.listen(16)
held = []


def hold():
    while True:
        held.append(stall.accept()[0])


threading.Thread(target=hold, daemon=True).start()
print("listening %d\nstalling %d" % (server.server_address[1], stall.getsockname()[1]), flush=True)
server.serve_forever()
