"""A live web dashboard of a running system's store: ``python -m actors dashboard``.

Needs the ``dashboard`` extra (Starlette, Hypercorn): ``pip install 'actors[dashboard]'``.
"""

from ._app import create_app

__all__ = ["create_app"]
