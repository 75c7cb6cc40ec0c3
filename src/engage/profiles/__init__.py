"""Profiles and consent: what engage knows about each customer, kept current from the stream."""

from engage.profiles.consumer import ProfilesConsumer
from engage.profiles.queries import find_profile_id, profile_view

__all__ = ["ProfilesConsumer", "find_profile_id", "profile_view"]
