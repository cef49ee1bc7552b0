"""The to-do record."""
from dataclasses import dataclass


@dataclass
class Todo:
    title: str
    id: int = 0
    done: bool = False
