"""Exception groups at the edges: nurseries wrap errors, users want the error itself."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["sole_error"]

E = TypeVar("E", bound=BaseException)


def sole_error(group: BaseExceptionGroup[BaseException], kind: type[E]) -> E | None:
    """The single leaf of ``group`` (however nested) if it is a ``kind``, else None."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            leaves.append(exc)
    if len(leaves) == 1 and isinstance(leaves[0], kind):
        return leaves[0]
    return None
