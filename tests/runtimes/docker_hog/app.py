"""An HTTP service for the memory tests: GET /healthz, POST /hog grows until it is killed."""

import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

chunks = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self):
        while True:
            chunks.append(b"x" * (10 << 20))
            time.sleep(0.01)

    def log_message(self, *args):
        pass


ThreadingHTTPServer((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080"))),
                    Handler).serve_forever()
