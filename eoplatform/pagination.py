"""The API's pagination: DRF's limit/offset, with the page size capped."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import pagination

MAX_PAGE = 1000


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's LimitOffsetPagination with `limit` capped at MAX_PAGE (a larger one gives MAX_PAGE rows and a `next`
    link): uncapped, `?limit=9223372036854775808` reached the database's LIMIT and failed there (a 500)."""

    max_limit = MAX_PAGE


# For views that paginate by hand (an APIView calling the paginator), which the schema generator cannot see.
PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description=f"Number of results per page (at most {MAX_PAGE})."),
    OpenApiParameter("offset", int, description="The index of the first result."),
]
