"""The control plane: the jupyter_server extension and its handlers under /deploy/api.

The only part of the package that imports jupyter_server.
"""
