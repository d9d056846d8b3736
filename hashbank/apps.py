from django.apps import AppConfig


class HashbankConfig(AppConfig):
    name = "hashbank"
    verbose_name = "Hash bank"
