"""Parameters shared by routes: list pages and numeric ids in paths."""

from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Path, Query

from server.schemas import Page

T = TypeVar("T")


@dataclass(frozen=True)
class Pagination:
    limit: int
    offset: int

    def of(self, items: list[T], total: int) -> Page[T]:
        """The response for one page of a list: its items, shaped, and how many in all."""
        return Page(items=items, total=total, limit=self.limit, offset=self.offset)


def _pagination(
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Pagination:
    return Pagination(limit=limit, offset=offset)


PageParams = Annotated[Pagination, Depends(_pagination)]


# Ids are 32-bit in the database: larger numbers are a 422, not an overflow.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
