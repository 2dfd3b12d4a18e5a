"""Declared inputs and outputs of a checkpoint: the type grammar, JSON Schema and validation.

Types, as written in `--inputs/--outputs` or in the cell's annotations:

    int  float  str  bool  bytes  file  any  list  dict
    list[T]  dict[str,T]  Optional[T] (also `T|None`, `T?`)
    ndarray  ndarray[float32]  ndarray[float32,(-1,4)]      (-1: any length on that axis)
    DataFrame  DataFrame[a:float64,b:str]

Kept free of heavy imports: the gateway validates every request with it (on decoded JSON,
without numpy or pandas). Turning JSON into Python values and back is in `values.py`.
"""

from .fields import (  # noqa: F401 - the package's interface
    InputCheck,
    cell_annotations,
    check_fields,
    input_errors,
    invalid_input_body,
    parse_fields,
    split_top,
)
from .grammar import parse_type  # noqa: F401
from .kinds import DTYPES, Type  # noqa: F401
