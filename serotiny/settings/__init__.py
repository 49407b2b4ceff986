"""serotiny's own settings: the config sections serotiny reads, typed, with their defaults.

Nothing here imports Lightning or MLflow: settings are read by every command, including the
ones that must answer fast (``--help``, ``validate``).
"""
