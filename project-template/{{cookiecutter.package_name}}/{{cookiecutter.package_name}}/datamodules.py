"""Your own LightningDataModules, referred to from config/data/*.yaml by `_target_`.

serotiny.datamodules.ManifestDatamodule covers tables of features and file paths; write a
class here when your data needs something else.
"""
