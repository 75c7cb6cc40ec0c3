"""Recommendation models behind one interface (`Model`): popularity, item-kNN, EASE, ALS and BPR."""

from engage.recommend.models.base import Model

__all__ = ["Model"]
