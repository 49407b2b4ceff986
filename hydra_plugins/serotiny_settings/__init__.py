"""serotiny's settings schema (``serotiny_settings``) and resolvers, for every Hydra app.

Hydra imports the modules under ``hydra_plugins`` whenever it starts, so a project's config
that puts ``serotiny_settings`` in its defaults list composes anywhere: through serotiny's
CLI, and also through Hydra's compose API in a notebook or a test. The names are serotiny's
own (``serotiny_settings``, ``serotiny.*`` resolvers), so nothing of another app's changes.
Kept cheap: dataclasses and OmegaConf only.
"""

from serotiny.settings.schema import register_settings

register_settings()
