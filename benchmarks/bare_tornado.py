"""The bare Tornado app of the peers table: one HTTP stack, no routing, the same function.

    python benchmarks/bare_tornado.py PORT

`POST /` with `{"input": {"a": 1.5, "b": 2.25}}` answers `{"output": {"total": 3.75}}`.
Prints `ready` once it listens on 127.0.0.1:PORT.
"""

from __future__ import annotations

import asyncio
import json
import sys

import tornado.web


class Sum(tornado.web.RequestHandler):
    def post(self) -> None:
        values = json.loads(self.request.body)["input"]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"output": {"total": values["a"] + values["b"]}}))


async def main(port: int) -> None:
    app = tornado.web.Application([(r"/", Sum)])
    app.listen(port, address="127.0.0.1", xheaders=False)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
