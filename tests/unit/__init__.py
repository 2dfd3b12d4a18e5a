"""Pure policies tested as functions: no processes, sockets, kernels or shared fixtures.

`pytest --confcutdir=tests/unit tests/unit` leaves out the suite's conftest (and the Jupyter
server plugin it loads) and runs the folder in about a second.
"""
