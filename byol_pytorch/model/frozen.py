"""The one encoder evaluation runs: a network's features in eval mode, with nothing about the network changed.

Scoring a representation must read the network, not train it. A plain call
in training mode would normalise batch norm with the batch's statistics and
update its running statistics and ``num_batches_tracked``; :class:`FrozenEncoder`
runs every submodule in eval mode under ``torch.no_grad()`` and puts each
submodule's own train/eval flag back afterwards, so the features are those of
the network as it will be used and the network is left bit-for-bit as it was.
"""

from __future__ import annotations

import torch
from torch import nn

from .byol import BYOL
from .encoder import HiddenLayer, HiddenLayerEncoder, preserved_modes


class FrozenEncoder(nn.Module):
    """Features of a network for evaluation: eval mode, no gradients, no side effects.

    Built from a :class:`BYOL` learner (its online encoder, with the learner's
    normalisation, which is what the trainer's kNN monitor scores) or from any
    network, cut at ``hidden_layer`` when one is given. Every call runs the
    network in eval mode under ``torch.no_grad()`` and restores the train/eval
    flag of every submodule afterwards (mixed flags included, even if the
    network raises). Batch-norm running statistics, ``num_batches_tracked``,
    parameters, hooks and the device of the network are never changed: the
    encoder shares the network's modules and moves nothing, so images must be
    on the network's device.

    Args:
        source: a :class:`BYOL` learner, or any network mapping images
            ``(B, C, H, W)`` to features.
        hidden_layer: for a network, the layer whose output is the feature (a
            name from ``net.named_modules()``, a child index, or ``-1`` for the
            output; see :class:`HiddenLayerEncoder`, which pools it to
            ``(B, D)``). ``None`` calls the network whole and returns its output
            as it is. Must be ``None`` for a learner, whose layer was chosen
            when it was built.
        normalize: a module applied to the images first, e.g.
            ``byol_pytorch.model.Normalize()`` for ImageNet statistics. Must be
            ``None`` for a learner, whose own normalisation is used.

    Raises:
        ValueError: ``hidden_layer`` or ``normalize`` given with a learner, or
            a ``hidden_layer`` the network does not have.
        TypeError: ``source`` is not an ``nn.Module``.
    """

    def __init__(
        self,
        source: nn.Module,
        hidden_layer: HiddenLayer | None = None,
        normalize: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(source, nn.Module):
            raise TypeError(
                f"FrozenEncoder needs a BYOL learner or an nn.Module network, got {type(source).__name__}; "
                "a plain function cannot be put in eval mode, so call it yourself under torch.no_grad()"
            )
        if isinstance(source, BYOL):
            for name, value in (("hidden_layer", hidden_layer), ("normalize", normalize)):
                if value is not None:
                    raise ValueError(
                        f"FrozenEncoder(learner) takes the learner's own {name}, got {name}={value!r}; "
                        f"pass the network instead (FrozenEncoder(net, hidden_layer=..., normalize=...))"
                    )
            self.encoder: nn.Module = source.online_encoder.hidden_encoder  # the representation, not the projector
            self.normalize = source.normalize
        else:
            self.encoder = source if hidden_layer is None else HiddenLayerEncoder(source, hidden_layer)
            self.normalize = normalize

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features of a batch.

        Args:
            images: ``(B, C, H, W)`` on the network's device.

        Returns:
            ``(B, D)`` features (with ``hidden_layer=None``, whatever the
            network returns), computed without gradients.
        """
        with torch.no_grad(), preserved_modes(self):
            self.eval()
            if self.normalize is not None:
                images = self.normalize(images)
            return self.encoder(images)
