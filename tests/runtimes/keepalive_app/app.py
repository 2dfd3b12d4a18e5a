"""An HTTP/1.1 keep-alive service for the pass-through tests (stdlib only). Every answer
names the connection it came on (X-Conn), and each path frames its answer its own way."""

import asyncio
import itertools
import json
import os

connections = itertools.count(1)
PAGE = b"x" * 1000


def answer(status, fields, body=b""):
    head = "".join(f"{name}: {value}\r\n" for name, value in fields)
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode("latin-1") + body


def respond(method, target, fields, body, conn):
    path = target.split("?", 1)[0]
    own = [("X-Conn", str(conn))]
    if path == "/nocontent":
        return answer("204 No Content", own)
    if path == "/notmodified":
        return answer("304 Not Modified", own + [("ETag", '"v1"')])
    if path == "/page":
        return answer("200 OK", own + [("Content-Type", "text/plain"),
                                       ("Content-Length", str(len(PAGE)))],
                      b"" if method == "HEAD" else PAGE)
    if path == "/hints":  # an interim answer first
        return answer("103 Early Hints", [("Link", "</s.css>; rel=preload")]) + answer(
            "200 OK", own + [("Content-Length", "5")], b"final")
    if path == "/cookies":
        return answer("200 OK", own + [("Set-Cookie", "a=1; Path=/"),
                                       ("Set-Cookie", "b=2, c; Path=/"),
                                       ("Content-Length", "2")], b"{}")
    if path == "/chunked":
        return answer("200 OK", own + [("Transfer-Encoding", "chunked")],
                      b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    if path == "/untyped":
        return answer("200 OK", own + [("Content-Length", "5")], b"plain")
    if path == "/hop":
        return answer("200 OK", own + [("Connection", "X-Secret"), ("X-Secret", "s"),
                                       ("Keep-Alive", "timeout=5"), ("X-Kept", "k"),
                                       ("Content-Length", "2")], b"{}")
    if path == "/extra":  # one answer, then another that nobody asked for
        return answer("200 OK", own + [("Content-Length", "5")], b"right") + answer(
            "200 OK", [("Content-Length", "5")], b"WRONG")
    if path == "/badlength":
        return answer("200 OK", own + [("Content-Length", target.split("=", 1)[1])], b"abc")
    data = json.dumps({"method": method, "target": target, "fields": fields,
                       "body": body.decode("latin-1")}).encode()
    return answer("200 OK", own + [("Content-Type", "application/json"),
                                   ("Content-Length", str(len(data)))], data)


async def serve(reader, writer):
    conn = next(connections)
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ")
            fields = [[part.strip() for part in line.split(":", 1)] for line in lines[1:] if line]
            headers = {name.lower(): value for name, value in fields}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            writer.write(respond(method, target, fields, body, conn))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    writer.close()


async def main():
    server = await asyncio.start_server(serve, os.environ.get("HOST", "0.0.0.0"),
                                        int(os.environ.get("PORT", "8080")))
    async with server:
        await server.serve_forever()


asyncio.run(main())
