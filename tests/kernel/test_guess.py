"""The Deploy cell dialog's guess types array and frame inputs as a pin would (issue 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jupyter_deploy.kernel.guess import guess


def test_the_guess_gives_arrays_and_frames_their_kinds():
    namespace = {"x": np.zeros((3, 4), dtype=np.float32), "table": pd.DataFrame({"a": [1]}),
                 "blob": b"raw", "things": {1, 2}, "model": len}
    source = "y = model(x, table, blob, things, count)"
    assert guess(source, namespace) == {
        "inputs": ["x:ndarray[float32,(-1,4)]", "table:DataFrame[a:int64]", "blob:bytes",
                   "things", "count"],
        "outputs": ["y"]}
