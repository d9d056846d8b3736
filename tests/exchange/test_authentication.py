"""What partner-authenticated views read as the partner behind a request."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from exchange.authentication import request_partner


def test_request_partner_refuses_a_request_not_made_by_a_partner():
    # Only a view wired to the wrong authentication class can get here.
    request = Request(APIRequestFactory().get("/"))
    request.user = AnonymousUser()
    with pytest.raises(TypeError, match="AnonymousUser"):
        request_partner(request)
