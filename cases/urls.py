from django.urls import path

from cases.api import CaseCreateApi, CaseStatusApi, CaseWithdrawApi

urlpatterns = [
    path("cases", CaseCreateApi.as_view(), name="case-create"),
    path("cases/status", CaseStatusApi.as_view(), name="case-status"),
    path("cases/withdraw", CaseWithdrawApi.as_view(), name="case-withdraw"),
]
