"""Entry point: wires the store into the routes and serves them."""
from app.api.routes import make_routes
from app.store.db import Store


def main() -> None:
    store = Store()
    routes = make_routes(store)
    print(f"serving {len(routes)} routes")


if __name__ == "__main__":
    main()
