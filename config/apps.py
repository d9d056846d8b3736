from django.contrib.admin.apps import AdminConfig


class HashbankAdminConfig(AdminConfig):
    """Django's admin, with hashbank's site as ``admin.site`` so every app registers there."""

    default_site = "config.admin.HashbankAdminSite"
