from django.urls import path

from exchange.feeds import api

urlpatterns = [
    path("keys", api.KeysApi.as_view(), name="exchange-keys"),
    path("lists/", api.ListsApi.as_view(), name="exchange-lists"),
    path("lists/<slug:slug>/checkpoint", api.CheckpointApi.as_view(), name="exchange-checkpoint"),
    path("lists/<slug:slug>/entries", api.EntriesApi.as_view(), name="exchange-entries"),
    path(
        "lists/<slug:slug>/proof/consistency",
        api.ConsistencyProofApi.as_view(),
        name="exchange-consistency",
    ),
    path(
        "lists/<slug:slug>/proof/inclusion",
        api.InclusionProofApi.as_view(),
        name="exchange-inclusion",
    ),
    path("feedback", api.FeedbackApi.as_view(), name="exchange-feedback"),
]
