"""A plain HTTP service for the Docker tests: /healthz, /metrics, /echo, and POST /sick."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state = {"requests": 0, "sick": False}


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            return self._answer(500 if state["sick"] else 200, '{"ok": %s}' % (
                "false" if state["sick"] else "true"))
        if path == "/metrics":
            return self._answer(200, "# HELP app_requests_total Requests served.\n"
                                "# TYPE app_requests_total counter\n"
                                f'app_requests_total{{app="echo"}} {state["requests"]}\n',
                                "text/plain; version=0.0.4")
        self._echo()

    def do_POST(self):
        if self.path == "/sick":
            state["sick"] = True
            return self._answer(200, '{"sick": true}')
        self._echo()

    do_PUT = do_POST

    def _echo(self):
        state["requests"] += 1
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length).decode()
        self._answer(200, json.dumps({
            "method": self.command, "path": self.path, "body": body,
            "x_test": self.headers.get("x-test"), "user": os.getuid(),
            "secret": os.environ.get("APP_SECRET"), "greeting": os.environ.get("GREETING"),
            "authorization": self.headers.get("authorization")}))

    def log_message(self, *args):
        pass


ThreadingHTTPServer((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080"))),
                    Handler).serve_forever()
