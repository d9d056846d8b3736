from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from cases.models import Case
from hashbank.models import Hash

pytestmark = pytest.mark.django_db


def test_demo_data_creates_cases_on_both_lists_once():
    out = StringIO()
    call_command("demo_data", stdout=out)
    created = json.loads(out.getvalue())["created"]
    assert {c["list"] for c in created} == {"adult", "minor"}
    assert Case.objects.count() == len(created)
    assert Hash.objects.filter(published=True, hash_list__slug="minor").exists()
    call_command("demo_data", stdout=StringIO())
    assert Case.objects.count() == len(created)


def test_demo_data_dry_run_creates_nothing():
    call_command("demo_data", "--dry-run", stdout=StringIO())
    assert not Case.objects.exists()
