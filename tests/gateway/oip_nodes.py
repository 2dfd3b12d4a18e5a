"""The nodes the Open Inference Protocol tests call (shared by the REST and gRPC tests)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pandas as pd

from ..conftest import checkpoint_body

SOURCE = """import numpy as np
import pandas as pd

if word == "boom":
    raise ValueError("boom was asked for")
y = x * 2
total = float(x.sum())
count = n + len(tags)
ok = not flag
upper = word.upper()
info = {"n": n}
ids10 = None if ids is None else ids * 10
frame = df if df is not None else pd.DataFrame({"a": np.array([0], dtype="int64"),
                                                "b": ["none"]})
raw = word.encode() + bytes([255])
"""
INPUTS = ("x:ndarray[float32,(-1,4)],n:int,flag:bool,word:str,tags:list[str],"
          "ids:Optional[ndarray[int64,(-1,)]],df:Optional[DataFrame[a:int64,b:str]],"
          "config:Optional[dict]")
OUTPUTS = ("y:ndarray[float32,(-1,4)],total:float,count:int,ok:bool,upper:str,info:dict,"
           "ids10:Optional[ndarray[int64,(-1,)]],frame:DataFrame[a:int64,b:str],raw:bytes")


def grid_checkpoint(name: str = "oipgrid", source: str = SOURCE) -> dict[str, Any]:
    """The checkpoint of the node every OIP test calls."""
    return checkpoint_body(name, source, INPUTS, OUTPUTS, x=np.ones((2, 4), dtype="float32"),
                           n=1, flag=False, word="hi", tags=["a"], ids=None, df=None,
                           config=None, np=np, pd=pd)


def http(method: str, url: str, body: bytes | dict[str, Any] | None = None,
         key: str | None = None, **headers: str) -> tuple[int, Any, bytes]:
    """One request to the gateway: (status, headers, body bytes), errors included."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def tensors(**values: tuple[str, list[int], list[Any]]) -> list[dict[str, Any]]:
    """OIP input tensors in the JSON form: name=(datatype, shape, data)."""
    return [{"name": name, "datatype": datatype, "shape": shape, "data": data}
            for name, (datatype, shape, data) in values.items()]


BASE_INPUTS = {"n": ("INT64", [1], [3]), "flag": ("BOOL", [1], [True]),
               "word": ("BYTES", [1], ["hey"]), "tags": ("BYTES", [2], ["a", "b"])}
