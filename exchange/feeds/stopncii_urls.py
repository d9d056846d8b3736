"""The StopNCII-compatible API, mounted at ``/stopncii/v1/`` (docs/ARCHITECTURE.md)."""

from django.urls import path

from exchange.feeds import stopncii

urlpatterns = [
    path("FetchHashes", stopncii.FetchHashesApi.as_view(), name="stopncii-fetch-hashes"),
    path("SubmitFeedback", stopncii.SubmitFeedbackApi.as_view(), name="stopncii-submit-feedback"),
]
