"""A tiny to-do service."""
