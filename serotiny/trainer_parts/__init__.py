"""What plugs into Lightning's Trainer: the checkpoint callback, the metrics logger, random
state, the prediction writer, and the builders that make a run's objects from config. Nothing here
looks runs up in MLflow."""
