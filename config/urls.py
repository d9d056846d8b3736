from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from cases.views import case_page, status_page
from config.health import healthz

urlpatterns = [
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

# The public pages in English at /, Dutch at /nl/ and Swedish at /sv/: the URL
# carries the language, so switching needs no cookie.
urlpatterns += i18n_patterns(
    path("", case_page, name="case-page"),
    path("status", status_page, name="case-status-page"),
    path("jsi18n.js", JavaScriptCatalog.as_view(packages=["cases"]), name="jsi18n"),
    prefix_default_language=False,
)
