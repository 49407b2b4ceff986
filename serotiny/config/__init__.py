"""Hydra configs packaged with serotiny (see README.md in this folder)."""
