"""Turn any image network into an encoder that returns one hidden layer's output.

The representation BYOL learns from is the output of a hidden layer of the
user's network (the pooled features before the classifier, for a ResNet).
:class:`HiddenLayerEncoder` returns that output as a ``(B, D)`` tensor and, where
the network can be traced, does not run the layers after it at all: no compute
is wasted on the classifier, and DistributedDataParallel sees no unused
parameters. Networks that cannot be traced fall back to a forward hook that is
registered for one call and removed before the call returns.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn

from ..errors import ImageSizeError, OptionError
from .backbones import feature_mode, output_field, output_fields, timm_pre_logits
from .precision import small_map_convolutions

HiddenLayer = str | int
TokenPool = Literal["cls", "mean"]
SpatialPool = Literal["avg", "flatten"]


class _HiddenOutput(Exception):
    """Raised from a forward hook to stop the network once the layer has run."""

    def __init__(self, output: object) -> None:
        super().__init__("hidden layer reached")
        self.output = output


def resolve_hidden_layer(net: nn.Module, hidden_layer: HiddenLayer) -> str | None:
    """Names the module whose output is the representation.

    Args:
        net: the user's network.
        hidden_layer: a dotted name from ``net.named_modules()``, an index into
            ``net.children()`` (negative allowed), or ``-1`` for the network's
            own output.

    Returns:
        The dotted module name, or ``None`` for the network's own output.

    Raises:
        OptionError: the name or index does not exist (a ``ValueError`` whose
            ``option`` is ``"hidden_layer"``); the message lists what does.
        TypeError: ``hidden_layer`` is neither a string nor an integer.
    """
    if isinstance(hidden_layer, bool) or not isinstance(hidden_layer, (str, int)):
        raise TypeError(
            f"hidden_layer must be a module name (str) or a child index (int), "
            f"got {hidden_layer!r} of type {type(hidden_layer).__name__}"
        )
    if isinstance(hidden_layer, int):
        if hidden_layer == -1:
            return None
        children = [name for name, _ in net.named_children()]
        if not -len(children) <= hidden_layer < len(children):
            raise OptionError(
                "hidden_layer", f"index {hidden_layer} is out of range for a network with "
                f"{len(children)} children; available: {children} (or -1 for the output)"
            )
        return children[hidden_layer]
    modules = dict(net.named_modules())
    if hidden_layer not in modules or hidden_layer == "":
        raise OptionError("hidden_layer", missing_layer_message(net, hidden_layer))
    return hidden_layer


def missing_layer_message(net: nn.Module, hidden_layer: str, shown_children: int = 30) -> str:
    """What is wrong when ``hidden_layer`` names no module of ``net`` (the text after "hidden_layer ").

    A deep network has hundreds of module names, and a list cut after the
    first few never reaches the layers one usually wants (a ResNet's
    ``avgpool`` comes after every block). So the message gives the names
    closest to the one asked for, then the top-level children (where the
    pooling layer and the classifier live), then how many names exist in all.

    Args:
        net: the user's network.
        hidden_layer: the name that was not found.
        shown_children: at most this many top-level children are listed.

    Returns:
        One line for a ``ValueError``.
    """
    names = [name for name, _ in net.named_modules() if name]
    parts = [f"{hidden_layer!r} not found in the network"]
    closest = difflib.get_close_matches(hidden_layer, names, n=5, cutoff=0.6)
    parts.append("closest: " + ", ".join(closest) if closest else "no similar name")
    children = [name for name, _ in net.named_children()]
    if children:
        listed = ", ".join(children[:shown_children])
        more = f", ... ({len(children) - shown_children} more)" if len(children) > shown_children else ""
        parts.append(f"top-level children: {listed}{more}")
    parts.append(f"{len(names)} module names in all (see net.named_modules()), or an int index into the "
                 "children, -1 for the network's output")
    return "; ".join(parts)


@contextmanager
def preserved_modes(module: nn.Module) -> Iterator[None]:
    """Restores the train/eval flag of every submodule on exit (mixed states included)."""
    modes = [(m, m.training) for m in module.modules()]
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _try_trace(net: nn.Module, layer: str) -> nn.Module | None:
    """A graph module that stops at ``layer``, sharing the user's parameters, or None."""
    from torchvision.models.feature_extraction import create_feature_extractor

    try:
        # Tracing switches the network to train and to eval mode and back as a whole.
        with preserved_modes(net), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return create_feature_extractor(net, return_nodes={layer: "hidden"})
    except Exception:  # noqa: BLE001 - tracing fails in many ways; the hook path covers them all
        return None


class HiddenLayerEncoder(nn.Module):
    """The user's network cut at ``hidden_layer``, returning ``(B, D)`` features.

    The network's parameters are shared, not copied: training the encoder trains
    the user's network.

    Args:
        net: any image network.
        hidden_layer: see :func:`resolve_hidden_layer`; also ``"pre_logits"`` on a
            timm model (its ``forward_head(..., pre_logits=True)``) and, on a
            Hugging Face transformers model, a field of its output such as
            ``"pooler_output"`` or ``"last_hidden_state"`` (see
            :mod:`byol_pytorch.model.backbones`).
        spatial_pool: for a ``(B, C, H, W)`` output, ``"avg"`` averages over H and
            W (giving C features; identical to flattening for a 1x1 map) and
            ``"flatten"`` keeps every position (C*H*W features).
        token_pool: for a ``(B, N, D)`` token output (vision transformers),
            ``"cls"`` takes the first token and ``"mean"`` averages the tokens.
        trace: try torchvision's FX feature extraction so that the layers after
            the hidden one are never run; ``False`` always uses a hook.
    """

    def __init__(
        self,
        net: nn.Module,
        hidden_layer: HiddenLayer = -2,
        spatial_pool: SpatialPool = "avg",
        token_pool: TokenPool = "cls",
        trace: bool = True,
    ) -> None:
        super().__init__()
        if spatial_pool not in ("avg", "flatten"):
            raise ValueError(f"spatial_pool must be 'avg' or 'flatten', got {spatial_pool!r}")
        if token_pool not in ("cls", "mean"):
            raise ValueError(f"token_pool must be 'cls' or 'mean', got {token_pool!r}")
        self.spatial_pool = spatial_pool
        self.token_pool = token_pool
        # Input size -> whether a convolution ran on a map of a pixel or a few (model/precision.py).
        self._small_map_convs: dict[tuple[str, tuple[int, ...]], bool] = {}
        api = feature_mode(net, hidden_layer)
        # timm's pre-logits and a transformers output field are read through the network's own API.
        self.layer = hidden_layer if api is not None else resolve_hidden_layer(net, hidden_layer)
        traced = _try_trace(net, self.layer) if (api is None and trace and self.layer is not None) else None
        if api is not None:
            self.net = net
            self.mode = api
        elif traced is not None:
            # The traced graph holds only the modules up to the hidden layer, so the
            # unused tail is not among our parameters (DDP would wait for its grads).
            traced.training = net.training  # only the flag: the user's modules keep theirs
            self.traced = traced
            self.mode = "traced"
        else:
            self.net = net
            self.mode = "output" if self.layer is None else "hook"

    def _raw_forward(self, x: torch.Tensor) -> object:
        if self.mode == "output":
            return self.net(x)
        if self.mode == "traced":
            return self.traced(x)["hidden"]
        if self.mode == "pre_logits":
            return timm_pre_logits(self.net, x)
        if self.mode == "field":
            return output_field(self.net, x, self.layer)
        layer = self.net.get_submodule(self.layer)

        def stop(_module: nn.Module, _inputs: object, output: object) -> None:
            raise _HiddenOutput(output)

        handle = layer.register_forward_hook(stop)
        try:
            self.net(x)
        except _HiddenOutput as reached:
            return reached.output
        finally:
            handle.remove()
        raise RuntimeError(
            f"hidden layer {self.layer!r} never ran during the forward pass; "
            "choose a layer that the network's forward() calls"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of the hidden layer.

        Args:
            x: images, ``(B, C, H, W)``.

        Returns:
            ``(B, D)`` features.
        """
        # Keyed by what fixes every layer's shapes; batch size does not change which maps are small.
        key = (x.device.type, tuple(x.shape[2:]))
        with small_map_convolutions(x.device.type, self._small_map_convs, key):
            return self.pool(self._raw_forward(x))

    def pool(self, out: object) -> torch.Tensor:
        """Reduces a hidden output to ``(B, D)`` as documented on the class."""
        if isinstance(out, (tuple, list)):
            raise TypeError(
                f"hidden layer {self.layer or '<network output>'!r} returned a {type(out).__name__} of "
                f"{len(out)} items; choose a layer whose output is a single tensor "
                "(for example the pooling layer before the classifier)"
            )
        if output_fields(out):
            raise TypeError(
                f"the network returned a {type(out).__name__}, not a tensor; name one of its fields as "
                f"hidden_layer: {', '.join(output_fields(out))}"
            )
        if isinstance(out, dict) or not isinstance(out, torch.Tensor):
            raise TypeError(
                f"hidden layer {self.layer or '<network output>'!r} returned {type(out).__name__}; "
                "expected a tensor of shape (B, D), (B, N, D) or (B, C, H, W)"
            )
        if out.ndim == 2:
            return out
        if out.ndim == 3:
            return out[:, 0] if self.token_pool == "cls" else out.mean(dim=1)
        if out.ndim == 4:
            return out.mean(dim=(2, 3)) if self.spatial_pool == "avg" else out.flatten(1)
        raise ValueError(
            f"hidden layer output has shape {tuple(out.shape)}; expected (B, D), (B, N, D) or (B, C, H, W)"
        )


def infer_channels(net: nn.Module, default: int = 3) -> int:
    """Input channels of the first convolution, or ``default`` if there is none."""
    for module in net.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return module.in_channels
    return default


@torch.no_grad()
def infer_output_dim(encoder: nn.Module, channels: int, image_size: tuple[int, int]) -> int:
    """Width of ``encoder``'s output, found without changing any of its state.

    Runs two blank images through the encoder in eval mode (so batch norm reads
    its running statistics and never updates them) and restores every
    submodule's train/eval mode afterwards.

    Args:
        encoder: a module mapping ``(B, C, H, W)`` images to ``(B, D)`` features.
        channels: input channels C.
        image_size: ``(H, W)``.

    Returns:
        D.

    Raises:
        ImageSizeError: the encoder fails on ``image_size`` but runs on 224x224.
    """
    param = next(iter(encoder.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    with preserved_modes(encoder):
        encoder.eval()
        try:
            return int(encoder(torch.zeros(2, channels, *image_size, device=device, dtype=dtype)).shape[-1])
        except (RuntimeError, AssertionError) as err:
            # A failure is the image size's fault only if the paper's 224 px runs; anything else is a real error.
            if tuple(image_size) == (224, 224) or not _runs_at(encoder, channels, (224, 224), device, dtype):
                raise
            raise ImageSizeError(
                f"the network cannot run on {image_size[0]}x{image_size[1]} images, though it runs on 224x224 "
                f"({str(err).strip().splitlines()[0]}); use larger images, or the size it was built for",
                tuple(image_size)) from err


def _runs_at(encoder: nn.Module, channels: int, size: tuple[int, int], device: torch.device,
             dtype: torch.dtype) -> bool:
    try:
        encoder(torch.zeros(2, channels, *size, device=device, dtype=dtype))
    except (RuntimeError, AssertionError):
        return False
    return True
