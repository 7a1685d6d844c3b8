"""The registry's HTTP layer: one route table, thin handlers, one error middleware."""

from registry.http.errors import API_VERSION, API_VERSION_HEADER, error_middleware
from registry.http.routes import ROUTES

__all__ = ["API_VERSION", "API_VERSION_HEADER", "ROUTES", "error_middleware"]
