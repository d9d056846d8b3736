"""An unknown case, a wrong PIN and a locked case cost the server the same work.

Their answers are byte-identical (test_case_security) and all three do one
Argon2 verification; this checks that they run the same statements too. Time
is measured against a real server by ``scripts/bench_timing.py``: on a shared
test machine, scheduling noise is far larger than the differences in question.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cases import case_numbers
from tests.conftest import pdq

STATUS = "/api/v1/cases/status"


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    settings.HASHBANK_RATE_CASE_STATUS = "100000/h"


def status(client: Client, case_number: str, pin: str) -> int:
    body = {"case_number": case_number, "pin": pin}
    return client.post(STATUS, body, content_type="application/json").status_code


def statement_shapes(run: Callable[[], int]) -> list[str]:
    """The statements a request runs, with every literal value blanked out."""
    with CaptureQueriesContext(connection) as queries:
        assert run() == 403
    return [re.sub(r"'[^']*'|\d+", "?", query["sql"]) for query in queries.captured_queries]


def unknown_number(known: str) -> str:
    while (number := case_numbers.generate()) == known:
        pass
    return number


# Committed as in production, not inside a test's transaction.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_unknown_case_wrong_pin_and_locked_case_run_the_same_statements(make_case):
    client = Client()
    open_case = make_case(pdq("open"))
    locked_case = make_case(pdq("locked"))
    for _ in range(10):
        status(client, locked_case.case_number, "wrong-pin")

    unknown = statement_shapes(lambda: status(client, unknown_number("-"), "wrong-pin"))
    wrong = statement_shapes(lambda: status(client, open_case.case_number, "wrong-pin"))
    locked = statement_shapes(lambda: status(client, locked_case.case_number, open_case.pin))
    assert unknown == wrong == locked
