"""Shared pytest configuration: markers are registered in pyproject.toml."""
