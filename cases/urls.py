from django.urls import path

from cases.api import CaseCreateApi, CaseStatusApi, CaseWithdrawApi
from hashbank.jsonapi import json_post_view

urlpatterns = [
    path("cases", json_post_view(CaseCreateApi), name="case-create"),
    path("cases/status", json_post_view(CaseStatusApi), name="case-status"),
    path("cases/withdraw", json_post_view(CaseWithdrawApi), name="case-withdraw"),
]
