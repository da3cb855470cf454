"""Serving, in three layers: ``engine`` (in-memory scoring) < ``runtime`` (one app instance) <
``api`` (HTTP)."""
