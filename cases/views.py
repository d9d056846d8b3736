from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def case_page(request: HttpRequest) -> HttpResponse:
    """The public page: what the service is, and check or withdraw a case."""
    return render(request, "cases/index.html")
