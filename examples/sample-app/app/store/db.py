"""In-memory storage of to-dos."""
from app.store.models import Todo


class Store:
    def __init__(self) -> None:
        self._todos: list[Todo] = []

    def all(self) -> list[Todo]:
        return list(self._todos)

    def add(self, todo: Todo) -> Todo:
        todo.id = len(self._todos) + 1
        self._todos.append(todo)
        return todo

    def complete(self, todo_id: int) -> Todo:
        todo = next(t for t in self._todos if t.id == todo_id)
        todo.done = True
        return todo
