"""HTTP routes: list, add and complete to-dos."""
from app.store.db import Store
from app.store.models import Todo


def make_routes(store: Store) -> dict:
    def list_todos():
        return [todo.__dict__ for todo in store.all()]

    def add_todo(title: str):
        return store.add(Todo(title=title)).__dict__

    def complete_todo(todo_id: int):
        return store.complete(todo_id).__dict__

    return {"GET /todos": list_todos, "POST /todos": add_todo, "POST /todos/done": complete_todo}
