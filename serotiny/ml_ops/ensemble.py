"""Earlier import path of :mod:`serotiny.models.ensemble`, kept for existing notebooks."""

from serotiny.models.ensemble import AGGREGATES, EnsembleModule, aggregate_outputs

__all__ = ["AGGREGATES", "EnsembleModule", "aggregate_outputs"]
