"""The HTTP side of engage: the ingestion API, profiles, segments, health and the operator dashboard
(`engage.web.admin`)."""

from engage.web.app import create_app

__all__ = ["create_app"]
