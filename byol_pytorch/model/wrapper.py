"""The online (and target) encoder: the user's whole network and the projector on its hidden layer.

The layout is byol-pytorch 0.9's, so that scripts and checkpoints written for
it keep working: ``encoder.net`` is the user's network (registered: moving the
learner moves all of it, classifier included, and ``state_dict`` keys read
``net.*``), ``encoder.projector`` the projector, and calling the encoder
returns ``(projection, representation)``. The forward pass runs the network
only up to the hidden layer through a :class:`HiddenLayerEncoder` kept outside
the module tree: its modules are the network's own, so nothing is held twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from .augment import as_size
from .encoder import HiddenLayer, HiddenLayerEncoder, SpatialPool, TokenPool, infer_channels, infer_output_dim
from .heads import MLPHead, SimSiamProjector
from .simplicial import SEM_DEFAULTS, simplicial_projector

# byol-pytorch 0.9's hook state, which has no counterpart here: what to use instead.
_GONE = {
    "hidden": "the hidden layer's output is returned, not kept: call get_representation(x)",
    "hook_registered": "no hook stays registered (one lives for a single call, or none where the network is "
                       "traced); read .mode",
    "_find_layer": "the hidden layer is resolved when the wrapper is built: read .layer",
    "_register_hook": "no hook stays registered: call get_representation(x)",
    "_hook": "no hook stays registered: call get_representation(x)",
    "_get_projector": "the projector is built with the wrapper: read .projector",
}


def relink_shared(graph: nn.Module, net: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
    """Makes ``graph`` follow ``net`` after a conversion (``fn``, as ``nn.Module._apply`` takes it) or a load.

    A traced graph shares the network's leaf modules, but its containers are
    its own: a tensor the tracer made a constant (``_tensor_constant0``) lives
    only there and is converted with ``fn``; a parameter or buffer that lives
    directly on a container of the network (a class token) is held by both,
    and the graph is pointed at the network's again.
    """
    for path, module in graph.named_modules():
        try:
            original = net.get_submodule(path)
        except AttributeError:
            original = None
        if module is original:
            continue
        if fn is not None:
            module._apply(fn, recurse=False)
        if original is None:
            continue
        for store, source in ((module._parameters, original._parameters), (module._buffers, original._buffers)):
            for key in store:
                if key in source:
                    store[key] = source[key]


class NetWrapper(nn.Module):
    """The user's network with a projector on its hidden layer (byol-pytorch 0.9's ``NetWrapper``).

    Args:
        net: the user's network; it is trained in place.
        projection_size: the projector's output width.
        projection_hidden_size: the projector's hidden width.
        layer: the hidden layer (see :class:`HiddenLayerEncoder`).
        use_simsiam_mlp: SimSiam's three-layer projector instead of BYOL's MLP.
        sync_batchnorm: the projector's batch-norm policy across processes.
        use_simplicial_embeddings: put a simplicial embedding (Lavoie et al. 2022)
            between the representation and the projector (off by default).
        sem_num_simplices: L, the number of simplices.
        sem_simplex_dim: V, the size of each simplex.
        sem_temperature: the softmax temperature of the embedding.
        image_size: an input size the network runs on, to infer the
            representation's width (0.9 inferred it at the first call).
        channels: input channels (inferred from the first convolution).
        spatial_pool: how a ``(B, C, H, W)`` hidden output becomes ``(B, D)``.
        token_pool: how a ``(B, N, D)`` hidden output becomes ``(B, D)``.
        trace: cut the network after the hidden layer where it can be traced.

    Attributes:
        net: the user's network.
        projector: the projector (``Sequential(embedding, SimplicialEmbedding, MLP)``
            with simplicial embeddings).
        representation_dim: D, the width of the representation.
    """

    def __init__(
        self,
        net: nn.Module,
        projection_size: int = 256,
        projection_hidden_size: int = 4096,
        layer: HiddenLayer = -2,
        use_simsiam_mlp: bool = False,
        sync_batchnorm: bool | None = None,
        use_simplicial_embeddings: bool = False,
        sem_num_simplices: int = SEM_DEFAULTS["sem_num_simplices"],
        sem_simplex_dim: int = SEM_DEFAULTS["sem_simplex_dim"],
        sem_temperature: float = SEM_DEFAULTS["sem_temperature"],
        *,
        image_size: int | Sequence[int] = 224,
        channels: int | None = None,
        spatial_pool: SpatialPool = "avg",
        token_pool: TokenPool = "cls",
        trace: bool = True,
    ) -> None:
        super().__init__()
        self.net = net
        # Outside the module tree: its modules are net's, and state_dict() holds them once, as net.*.
        self.__dict__["hidden_encoder"] = HiddenLayerEncoder(net, layer, spatial_pool, token_pool, trace)
        self.projection_size, self.projection_hidden_size = projection_size, projection_hidden_size
        self.use_simsiam_mlp, self.sync_batchnorm = use_simsiam_mlp, sync_batchnorm
        self.use_simplicial_embeddings = bool(use_simplicial_embeddings)
        self.sem_num_simplices, self.sem_simplex_dim = sem_num_simplices, sem_simplex_dim
        self.sem_temperature = sem_temperature
        in_channels = channels if channels is not None else infer_channels(net)
        self.representation_dim = infer_output_dim(self.hidden_encoder, in_channels, as_size(image_size))
        self.projector = self._build_projector()
        reference = next(iter(net.parameters()), None)
        if reference is not None:
            self.projector.to(reference.device, reference.dtype)

    def _build_projector(self) -> nn.Module:
        head = SimSiamProjector if self.use_simsiam_mlp else MLPHead

        def projector_of(width: int) -> nn.Module:
            return head(width, self.projection_size, self.projection_hidden_size, self.sync_batchnorm)

        if not self.use_simplicial_embeddings:
            return projector_of(self.representation_dim)
        return simplicial_projector(self.representation_dim, projector_of, self.sem_num_simplices,
                                    self.sem_simplex_dim, self.sem_temperature, self.sync_batchnorm)

    @property
    def layer(self) -> str | int | None:
        """The hidden layer, resolved to a module name (``None``: the network's output)."""
        return self.hidden_encoder.layer

    @property
    def mode(self) -> str:
        """How the hidden layer is reached: ``"traced"``, ``"hook"``, ``"output"``, ``"pre_logits"``, ``"field"``."""
        return self.hidden_encoder.mode

    @property
    def spatial_pool(self) -> str:
        """How a ``(B, C, H, W)`` hidden output becomes ``(B, D)``."""
        return self.hidden_encoder.spatial_pool

    @property
    def token_pool(self) -> str:
        """How a ``(B, N, D)`` hidden output becomes ``(B, D)``."""
        return self.hidden_encoder.token_pool

    def get_representation(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden layer's features ``(B, D)`` of images ``x`` ``(B, C, H, W)``."""
        return self.hidden_encoder(x)

    def forward(self, x: torch.Tensor,
                return_projection: bool = True) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``(projection (B, P), representation (B, D))``, or the representation alone."""
        representation = self.get_representation(x)
        if not return_projection:
            return representation
        return self.projector(representation), representation

    def trained_tensors(self) -> Iterator[nn.Parameter]:
        """The parameters the forward pass uses: the network's up to the hidden layer, then the projector's."""
        return itertools.chain(self.hidden_encoder.parameters(), self.projector.parameters())

    def unused_names(self) -> list[str]:
        """Names in ``net`` of the parameters and buffers the forward pass never reads (the classifier)."""
        used = {id(t) for t in itertools.chain(self.hidden_encoder.parameters(), self.hidden_encoder.buffers())}
        return [name for name, t in itertools.chain(self.net.named_parameters(), self.net.named_buffers())
                if id(t) not in used]

    def relink(self, fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Makes the hidden encoder follow the network after a conversion ``fn`` or an assigning load."""
        relink_shared(self.hidden_encoder, self.net, fn)

    def train(self, mode: bool = True) -> NetWrapper:
        super().train(mode)
        self.hidden_encoder.train(mode)  # a traced graph keeps one graph per mode and switches with its flag
        return self

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]  # torch's own signature
        super()._apply(fn, recurse)
        self.relink(fn if recurse else None)
        return self

    def __getattr__(self, name: str) -> object:
        if name in _GONE:
            raise AttributeError(f"NetWrapper.{name} (byol-pytorch 0.9) is gone: {_GONE[name]}")
        return super().__getattr__(name)
