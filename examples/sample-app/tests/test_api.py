"""Tests of the routes against the in-memory store."""
from app.api.routes import make_routes
from app.store.db import Store


def test_add_then_list():
    routes = make_routes(Store())
    routes["POST /todos"]("write docs")
    assert routes["GET /todos"]()[0]["title"] == "write docs"
