"""The ``serotiny`` command line: dispatch, project discovery and Hydra composition."""
