"""The HTTP side of engage: the ingestion API, profiles, segments and health (the dashboard comes later)."""

from engage.web.app import create_app

__all__ = ["create_app"]
