"""TabularVAE: a Gaussian variational autoencoder for rows of numeric features."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from serotiny.models import _checks
from serotiny.models._checks import ModelConfigError
from serotiny.models._optim import configure_optimizers
from serotiny.models._steps import StagedModule
from serotiny.models.networks import MLP

Batch = Mapping[str, torch.Tensor]


class TabularVAE(StagedModule):
    """A VAE over ``batch[x_label]`` rows of ``x_dim`` features.

    The encoder (an :class:`~serotiny.models.MLP` through ``hidden_layers``) gives a diagonal
    Gaussian posterior over ``latent_dim`` latents; the decoder mirrors it. The loss per sample is
    ``reconstruction + beta * KL``, where ``reconstruction`` is the summed squared error over the
    features (a unit-variance Gaussian likelihood up to constants) and ``KL`` the divergence from
    a standard normal prior; both are averaged over the batch.

    Logged per epoch for each stage ``train``/``val``/``test``: ``{stage}_loss``,
    ``{stage}_reconstruction_loss`` and ``{stage}_kl_divergence``.

    Args:
        x_dim: features per sample; inputs ``(B, ...)`` are flattened and must have this many.
        latent_dim: size of the latent space.
        hidden_layers: widths of the encoder's hidden layers (the decoder uses them reversed).
        x_label: batch key of the input tensor.
        optimizer: factory called with the parameters (YAML: ``_partial_: true``).
        beta: weight of the KL term (``beta > 1`` gives a beta-VAE).
        scheduler: optional factory called with the optimizer (YAML: ``_partial_: true``).
        scheduler_monitor: metric ``ReduceLROnPlateau`` watches.
    """

    def __init__(
        self,
        x_dim: int,
        latent_dim: int,
        hidden_layers: Sequence[int],
        x_label: str,
        optimizer: Callable[..., torch.optim.Optimizer],
        beta: float = 1.0,
        scheduler: Callable[..., Any] | None = None,
        scheduler_monitor: str = "val_loss",
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        x_dim = _checks.positive_int(owner, "x_dim", x_dim)
        latent_dim = _checks.positive_int(owner, "latent_dim", latent_dim)
        # Hydra hands lists over as ListConfig, which a weights-only checkpoint cannot hold.
        widths = list(_checks.positive_int_tuple(owner, "hidden_layers", hidden_layers))
        x_label = _checks.label(owner, "x_label", x_label)
        if isinstance(beta, bool) or not isinstance(beta, int | float) or beta < 0:
            raise ModelConfigError(f"{owner}: beta must be a number >= 0, got {beta!r}")
        scheduler_monitor = _checks.label(owner, "scheduler_monitor", scheduler_monitor)

        self.x_dim = x_dim
        self.latent_dim = latent_dim
        self.x_label = x_label
        self.beta = float(beta)
        self.optimizer_factory = _checks.factory(owner, "optimizer", optimizer, "the parameters")
        self.scheduler_factory = _checks.factory(
            owner, "scheduler", scheduler, "the optimizer", optional=True
        )
        self.scheduler_monitor = scheduler_monitor
        # Primitives only, so checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters(
            {
                "x_dim": x_dim,
                "latent_dim": latent_dim,
                "hidden_layers": widths,
                "x_label": x_label,
                "beta": self.beta,
                "scheduler_monitor": scheduler_monitor,
            }
        )
        # The encoder outputs mean and log-variance side by side.
        self.encoder = MLP(x_dim, 2 * latent_dim, widths)
        self.decoder = MLP(latent_dim, x_dim, list(reversed(widths)))

    # -- model ----------------------------------------------------------------------------

    def _input(self, batch: Batch) -> torch.Tensor:
        if self.x_label not in batch:
            raise ModelConfigError(
                f"{type(self).__name__}: batch has no {self.x_label!r} (x_label); "
                f"its keys are {sorted(batch)}"
            )
        x = batch[self.x_label].flatten(start_dim=1)
        if x.shape[1] != self.x_dim:
            raise ValueError(
                f"{type(self).__name__}: {self.x_label!r} has {x.shape[1]} features per "
                f"sample, but x_dim is {self.x_dim}"
            )
        # Manifests read through pandas often arrive as float64; the network is float32.
        if not x.is_floating_point() or x.dtype == torch.float64:
            x = x.float()
        return x

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mean, log_variance)``, each ``(B, latent_dim)``."""
        mean, log_variance = self.encoder(x).chunk(2, dim=1)
        return mean, log_variance

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(B, x_dim)`` of latents ``(B, latent_dim)``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(reconstruction, mean, log_variance)``.

        The latent is sampled while training and is the posterior mean otherwise, so
        validation and test losses are deterministic and safe to monitor for checkpoints and
        early stopping.
        """
        mean, log_variance = self.encode(x)
        z = mean
        if self.training:
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        return self.decode(z), mean, log_variance

    @staticmethod
    def reconstruction_error(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        """Per-sample summed squared error, ``(B,)``."""
        return (reconstruction - x).pow(2).sum(dim=1)

    @staticmethod
    def kl_divergence(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
        """Per-sample ``KL(N(mean, exp(log_variance)) || N(0, I))``, ``(B,)``."""
        return -0.5 * (1 + log_variance - mean.pow(2) - log_variance.exp()).sum(dim=1)

    # -- Lightning hooks ------------------------------------------------------------------

    def _shared_step(self, batch: Batch, stage: str) -> torch.Tensor:
        x = self._input(batch)
        reconstruction, mean, log_variance = self(x)
        reconstruction_loss = self.reconstruction_error(x, reconstruction).mean()
        kl = self.kl_divergence(mean, log_variance).mean()
        loss = reconstruction_loss + self.beta * kl
        # on_step=False keeps the names exactly as listed (no `_step`/`_epoch` suffixes).
        options: dict[str, Any] = {
            "on_step": False,
            "on_epoch": True,
            "batch_size": x.shape[0],
            "sync_dist": True,  # one value across DDP ranks (a no-op on one process)
        }
        self.log(f"{stage}_loss", loss, prog_bar=True, **options)
        self.log(f"{stage}_reconstruction_loss", reconstruction_loss, **options)
        self.log(f"{stage}_kl_divergence", kl, **options)
        return loss

    def predict_step(
        self, batch: Batch, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, torch.Tensor]:
        """``latent_mean`` ``(B, latent_dim)`` and ``reconstruction_error`` ``(B,)``.

        The error is that of decoding the posterior mean, in the same units as the logged
        ``*_reconstruction_loss`` (summed squared error per sample).
        """
        x = self._input(batch)
        mean, _ = self.encode(x)
        return {
            "latent_mean": mean,
            "reconstruction_error": self.reconstruction_error(x, self.decode(mean)),
        }

    def configure_optimizers(self) -> Any:
        return configure_optimizers(
            type(self).__name__,
            self.parameters(),
            self.optimizer_factory,
            self.scheduler_factory,
            self.scheduler_monitor,
        )
