"""`modelplane run`: which failures of kopf make the operator start again."""

from __future__ import annotations

import pytest
from kopf._cogs.clients.errors import APIForbiddenError, APINotFoundError

from modelplane.runner import watched_api_vanished


def _raised_from(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise RuntimeError("Multidimensional multitasker has failed") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    ("err", "vanished"),
    [
        (APINotFoundError("404 page not found", status=404, headers={}), True),
        (_raised_from(APINotFoundError("404 page not found", status=404, headers={})), True),
        (APIForbiddenError("forbidden", status=403, headers={}), False),
        (_raised_from(KeyError("x")), False),
        (type("NotKopf", (Exception,), {"status": 404})(), False),
    ],
)
def test_only_kopfs_404_from_a_vanished_api_restarts(err: BaseException, vanished: bool) -> None:
    assert watched_api_vanished(err) is vanished
