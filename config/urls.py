from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from cases.views import case_page
from config.health import healthz

urlpatterns = [
    path("", case_page, name="case-page"),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("cases.urls")),
    path("exchange/v1/", include("exchange.urls")),
    path("stopncii/v1/", include("exchange.feeds.stopncii_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    # Configurable (HASHBANK_ADMIN_PATH): tests and templates reverse "admin:…" names.
    path(settings.HASHBANK_ADMIN_PATH, admin.site.urls),
]
