"""serotiny's Hydra plugins (see :mod:`serotiny.search`)."""
