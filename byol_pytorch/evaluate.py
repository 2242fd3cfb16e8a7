"""Measure how good a learned representation is, from frozen features.

Self-supervised training has no accuracy of its own to report, so progress is
judged by how well a simple classifier does on the encoder's features:

* :func:`knn_accuracy` - a weighted k-nearest-neighbour vote on cosine
  similarity (Wu et al., 2018). It needs no training, so it is cheap enough to
  run every few epochs as a monitor.
* :func:`linear_probe` - multinomial logistic regression on standardised
  features, the usual "linear evaluation" protocol.

:func:`extract_features` turns an encoder and a labelled dataset into the
``(features, labels)`` pair both take, and :func:`evaluate_encoder` chains the
three. Networks are run through :class:`FrozenEncoder` (eval mode, no
gradients, the network left as it was): docs/evaluation.md, the trainer's kNN monitor
and the command line all score with it. Everything here is plain PyTorch, so the functions drop into any training
loop; none of them touches the global random state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from .model.frozen import FrozenEncoder

__all__ = ["FrozenEncoder", "extract_features", "knn_accuracy", "half_split_knn_accuracy", "labelled_split",
           "linear_probe", "evaluate_encoder"]


def _default_device(encoder: Callable[[Tensor], Tensor]) -> torch.device:
    """Where the encoder's weights live, or the CPU when that cannot be told."""
    if isinstance(encoder, nn.Module):
        for tensor in encoder.parameters():
            return tensor.device
        for tensor in encoder.buffers():
            return tensor.device
    return torch.device("cpu")


def _collate_present(items: list[Any]) -> Any:
    """Batches the items that are not ``None``; ``None`` when no item is left."""
    present = [item for item in items if item is not None]
    return default_collate(present) if present else None


def _check_bounds(**bounds: tuple[float, str, float]) -> None:
    """Checks each ``name=(value, ">=" or ">", bound)`` in order; NaN is out of every range.

    Raises:
        ValueError: naming the first value out of its range.
    """
    for name, (value, op, bound) in bounds.items():
        inside = value >= bound if op == ">=" else value > bound
        if not inside:
            raise ValueError(f"{name} must be {op} {bound}, got {value!r}")


def _encode_batch(
    encoder: Callable[[Tensor], Tensor],
    batch: Any,
    device: torch.device,
    transform: Callable[[Tensor], Tensor] | None,
) -> tuple[Tensor, Tensor]:
    """One loader batch of ``(images, labels)`` to CPU ``(features (B, D) float32, labels (B,) int64)``.

    Raises:
        ValueError: the batch is not an ``(image, label)`` pair, or the output
            has no batch dim of the right size.
        TypeError: the encoder returns something other than a tensor.
    """
    if not isinstance(batch, (list, tuple)) or len(batch) != 2:
        got = f"{len(batch)} fields" if isinstance(batch, (list, tuple)) else type(batch).__name__
        raise ValueError(f"dataset items must be (image, label) pairs, got items of {got}")
    images, labels = batch
    images = images.to(device, non_blocking=True)
    if transform is not None:
        images = transform(images)
    out = encoder(images)
    if not isinstance(out, Tensor):
        raise TypeError(f"encoder must return a Tensor, got {type(out).__name__}")
    if out.dim() < 2 or out.shape[0] != images.shape[0]:
        raise ValueError(
            f"encoder output must have shape (B, D, ...) with B={images.shape[0]}, "
            f"got {tuple(out.shape)}"
        )
    return out.flatten(1).to("cpu", torch.float32), torch.as_tensor(labels).reshape(-1).to("cpu", torch.long)


def _encode_loader(
    encoder: Callable[[Tensor], Tensor],
    loader: DataLoader,
    device: torch.device,
    transform: Callable[[Tensor], Tensor] | None,
) -> tuple[list[Tensor], list[Tensor]]:
    """Per-batch CPU features and labels of every batch of ``loader`` that is not ``None``."""
    feature_chunks: list[Tensor] = []
    label_chunks: list[Tensor] = []
    # no_grad rather than inference_mode: inference tensors cannot later be
    # saved for backward, which would break a caller training a probe on them.
    with torch.no_grad():
        for batch in loader:
            if batch is None:
                continue
            features, labels = _encode_batch(encoder, batch, device, transform)
            feature_chunks.append(features)
            label_chunks.append(labels)
    return feature_chunks, label_chunks


def extract_features(
    encoder: Callable[[Tensor], Tensor],
    dataset: Dataset[Any],
    batch_size: int = 256,
    device: torch.device | str | None = None,
    num_workers: int = 0,
    transform: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Runs a frozen encoder over a labelled dataset and collects its outputs.

    An ``nn.Module`` encoder is run as a :class:`FrozenEncoder` (eval mode, no
    gradients, every state of the network left as it was, even if it raises).
    A plain function is called under ``torch.no_grad()`` only, so a network it
    calls runs in its own mode (batch norm in training mode would update its
    running statistics): wrap networks in :class:`FrozenEncoder`, not in a
    function. Items are read in dataset order; an item that is ``None`` (an
    unreadable file of ``ImageFolderDataset(on_unreadable="return_none")``) is
    left out, with its label.

    Args:
        encoder: maps an image batch ``(B, C, H, W)`` to features ``(B, D)``.
            An output with more dims, e.g. a feature map ``(B, C', H', W')``,
            is flattened from dim 1 into ``(B, C' * H' * W')``.
        dataset: a map-style dataset whose items are ``(image, label)`` pairs;
            images are tensors of one shape and labels are ints or 0-d integer
            tensors.
        batch_size: images per encoder call.
        device: where to run the encoder. Defaults to the device of the
            encoder's first parameter (or buffer), else the CPU.
        num_workers: ``DataLoader`` worker processes for reading the dataset.
        transform: optional function applied to each image batch on ``device``
            before the encoder, e.g. normalisation.

    Returns:
        ``(features, labels)``: features ``(N, D)`` float32 and labels ``(N,)``
        int64, both on the CPU, where ``N`` is the number of items that are
        not ``None`` (``len(dataset)`` when none is).

    Raises:
        ValueError: if ``batch_size`` < 1, the dataset is empty or all
            ``None``, an item is not an ``(image, label)`` pair, or the
            encoder's output has no batch dim of the right size.
        TypeError: if the encoder returns something other than a tensor.
    """
    _check_bounds(batch_size=(batch_size, ">=", 1))
    target = torch.device(device) if device is not None else _default_device(encoder)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=target.type == "cuda", collate_fn=_collate_present)
    if isinstance(encoder, nn.Module) and not isinstance(encoder, FrozenEncoder):
        encoder = FrozenEncoder(encoder)
    feature_chunks, label_chunks = _encode_loader(encoder, loader, target, transform)
    if not feature_chunks:
        what = "is empty" if len(loader) == 0 else "has only None items (unreadable files)"
        raise ValueError(f"dataset {what}; expected at least one (image, label) item")
    return torch.cat(feature_chunks), torch.cat(label_chunks)


def _check_labels(labels: Tensor, name: str) -> None:
    if labels.dim() != 1:
        raise ValueError(f"{name} must have shape (N,), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"{name} must hold integer class indices, got dtype {labels.dtype}")


def _check_inputs(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int | None,
) -> int:
    """Validates a train/test feature split and returns the number of classes."""
    for name, feats in (("train_features", train_features), ("test_features", test_features)):
        if feats.dim() != 2:
            raise ValueError(f"{name} must have shape (N, D), got {tuple(feats.shape)}")
        if feats.shape[0] == 0:
            raise ValueError(f"{name} is empty (shape {tuple(feats.shape)}); expected at least one row")
    _check_labels(train_labels, "train_labels")
    _check_labels(test_labels, "test_labels")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            "train and test features must have the same dim D, got train_features "
            f"{tuple(train_features.shape)} and test_features {tuple(test_features.shape)}"
        )
    if train_labels.shape[0] != train_features.shape[0]:
        raise ValueError(
            f"train_labels {tuple(train_labels.shape)} does not match train_features "
            f"{tuple(train_features.shape)}: expected one label per row"
        )
    if test_labels.shape[0] != test_features.shape[0]:
        raise ValueError(
            f"test_labels {tuple(test_labels.shape)} does not match test_features "
            f"{tuple(test_features.shape)}: expected one label per row"
        )

    lowest = int(torch.minimum(train_labels.min(), test_labels.min()))
    highest = int(torch.maximum(train_labels.max(), test_labels.max()))
    if lowest < 0:
        raise ValueError(f"labels must be class indices >= 0, got {lowest!r}")
    if num_classes is None:
        return highest + 1
    if num_classes < 1 or highest >= num_classes:
        raise ValueError(f"num_classes={num_classes!r} is too small for the largest label {highest!r}")
    return num_classes


class _Split(NamedTuple):
    """A validated train/test split on the training features' device: float32 features, int64 labels."""

    train_features: Tensor
    train_labels: Tensor
    test_features: Tensor
    test_labels: Tensor
    num_classes: int


def _checked_split(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int | None,
    **bounds: tuple[float, str, float],
) -> _Split:
    """What :func:`knn_accuracy` and :func:`linear_probe` fit and score: validated, detached, on one device.

    The caller's hyperparameters ``bounds`` (see :func:`_check_bounds`) are
    checked first, then the shapes, dtypes and labels of the split.

    Raises:
        ValueError: a hyperparameter out of range, or features and labels
            whose shapes do not fit together.
    """
    _check_bounds(**bounds)
    num_classes = _check_inputs(train_features, train_labels, test_features, test_labels, num_classes)
    device = train_features.device
    return _Split(
        train_features.detach().float(),
        train_labels.detach().to(device, torch.long),
        test_features.detach().to(device, torch.float32),
        test_labels.detach().to(device, torch.long),
        num_classes,
    )


def knn_accuracy(
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    batch_size: int = 1024,
) -> float:
    """Top-1 accuracy of a weighted k-nearest-neighbour classifier.

    Features are l2-normalised, so neighbours are ranked by cosine similarity.
    Each of a test point's ``k`` nearest training points votes for its own
    label with weight ``exp(similarity / temperature)``, and the class with
    the largest total wins (Wu et al., 2018, "Unsupervised Feature Learning via
    Non-Parametric Instance Discrimination"). Ties go to the lower class index.

    Args:
        train_features: ``(N_train, D)`` features of the labelled bank.
        train_labels: ``(N_train,)`` integer class indices.
        test_features: ``(N_test, D)`` features to classify.
        test_labels: ``(N_test,)`` integer class indices.
        k: neighbours per vote; values above ``N_train`` use all of them.
        temperature: sharpness of the vote; smaller gives the nearest
            neighbours more say, larger tends towards a plain majority vote.
        num_classes: number of classes; defaults to the largest label + 1.
        batch_size: test rows compared at once, bounding memory to about
            ``batch_size * N_train`` similarities.

    Returns:
        Top-1 accuracy: the fraction of test points whose vote names their
        label, in ``[0, 1]``.

    Raises:
        ValueError: on ``k`` < 1, ``temperature`` <= 0, ``batch_size`` < 1, or
            features and labels whose shapes do not fit together.
    """
    split = _checked_split(
        train_features, train_labels, test_features, test_labels, num_classes,
        k=(k, ">=", 1), temperature=(temperature, ">", 0), batch_size=(batch_size, ">=", 1),
    )
    bank = F.normalize(split.train_features, dim=1)
    queries, truth = split.test_features, split.test_labels
    correct = 0
    for start in range(0, queries.shape[0], batch_size):
        chunk = F.normalize(queries[start : start + batch_size], dim=1)
        votes = _weighted_votes(chunk @ bank.T, split.train_labels, k, temperature, split.num_classes)
        correct += int((votes.argmax(dim=1) == truth[start : start + batch_size]).sum())
    return correct / queries.shape[0]


def _weighted_votes(
    similarities: Tensor, bank_labels: Tensor, k: int, temperature: float, num_classes: int
) -> Tensor:
    """Each query's class votes ``(Q, num_classes)`` from its ``k`` most similar bank rows.

    Args:
        similarities: ``(Q, N)`` cosine similarities of queries to the bank.
        bank_labels: ``(N,)`` int64 class of each bank row.
        k: neighbours per vote; more than ``N`` uses all of them.
        temperature: a neighbour's vote is ``exp(similarity / temperature)``.
        num_classes: columns of the result.
    """
    sims, idx = similarities.topk(min(k, similarities.shape[1]), dim=1)
    # Shifting by each row's best similarity scales that row's weights by a
    # common factor, so the winner is unchanged, but exp cannot overflow
    # float32 for small temperatures (1 / 0.01 = 100 > log(max float32)).
    weights = ((sims - sims[:, :1]) / temperature).exp()
    votes = torch.zeros(similarities.shape[0], num_classes, device=similarities.device)
    votes.scatter_add_(1, bank_labels[idx], weights)
    return votes


def linear_probe(
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor,
    epochs: int = 100,
    lr: float = 1.0,
    weight_decay: float = 1e-4,
    num_classes: int | None = None,
    seed: int = 0,
) -> float:
    """Top-1 accuracy of a logistic-regression classifier on frozen features.

    Features are standardised with the training set's per-dimension mean and
    std (applied to both splits), then a single ``nn.Linear`` is fitted to the
    whole training set at once with L-BFGS and a strong-Wolfe line search,
    minimising mean cross-entropy plus ``weight_decay / 2 * ||W||^2`` (the
    bias is not penalised). The result depends only on the inputs and ``seed``;
    the global random state is left untouched.

    Args:
        train_features: ``(N_train, D)`` features to fit on.
        train_labels: ``(N_train,)`` integer class indices.
        test_features: ``(N_test, D)`` features to score.
        test_labels: ``(N_test,)`` integer class indices.
        epochs: most L-BFGS iterations; each evaluates the full training set
            at least once (more when the line search needs extra steps).
        lr: L-BFGS step length; 1.0 suits the line search.
        weight_decay: strength of the L2 penalty on the weights; > 0 keeps
            the fit finite on separable data.
        num_classes: number of classes; defaults to the largest label + 1.
        seed: seeds the random initial weights.

    Returns:
        Top-1 accuracy of the fitted classifier on the test split, in ``[0, 1]``.

    Raises:
        ValueError: on ``epochs`` < 1, ``lr`` <= 0, ``weight_decay`` < 0, or
            features and labels whose shapes do not fit together.
    """
    x_train, y_train, x_test, y_test, num_classes = _checked_split(
        train_features, train_labels, test_features, test_labels, num_classes,
        epochs=(epochs, ">=", 1), lr=(lr, ">", 0), weight_decay=(weight_decay, ">=", 0),
    )
    x_train, x_test = _standardise(x_train, x_test)
    probe = _fit_logistic_regression(x_train, y_train, num_classes, epochs, lr, weight_decay, seed)
    with torch.no_grad():
        predictions = probe(x_test).argmax(dim=1)
    return float((predictions == y_test).float().mean())


def _standardise(x_train: Tensor, x_test: Tensor) -> tuple[Tensor, Tensor]:
    """Both splits scaled by the training split's per-dimension mean and std."""
    mean = x_train.mean(dim=0)
    # A constant feature has std 0; flooring it leaves that column at 0 instead
    # of turning it into NaNs.
    std = x_train.std(dim=0, unbiased=False).clamp_min(1e-6)
    return (x_train - mean) / std, (x_test - mean) / std


def _fit_logistic_regression(
    x: Tensor, y: Tensor, num_classes: int, epochs: int, lr: float, weight_decay: float, seed: int
) -> nn.Linear:
    """A linear classifier fitted to all of ``x (N, D)``, ``y (N,)`` with L-BFGS; see :func:`linear_probe`."""
    # Grad mode is forced on so the probe can be fitted from code running
    # under no_grad, e.g. an evaluation hook in someone else's loop.
    with torch.enable_grad():
        generator = torch.Generator().manual_seed(seed)
        # skip_init: nn.Linear's own init would draw from the global RNG.
        probe = torch.nn.utils.skip_init(nn.Linear, x.shape[1], num_classes, device=x.device)
        with torch.no_grad():
            probe.weight.copy_(torch.randn(probe.weight.shape, generator=generator) * 0.01)
            probe.bias.zero_()

        optimizer = torch.optim.LBFGS(
            probe.parameters(),
            lr=lr,
            max_iter=epochs,
            history_size=20,
            line_search_fn="strong_wolfe",
        )

        def closure() -> Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(probe(x), y)
            loss = loss + 0.5 * weight_decay * probe.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    return probe


def evaluate_encoder(
    encoder: Callable[[Tensor], Tensor],
    train_dataset: Dataset[Any],
    test_dataset: Dataset[Any],
    k: int = 20,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    transform: Callable[[Tensor], Tensor] | None = None,
) -> dict[str, float]:
    """Scores an encoder with a kNN monitor and a linear probe.

    Extracts features for both datasets with :func:`extract_features`, then
    runs :func:`knn_accuracy` and :func:`linear_probe` with their defaults.

    Args:
        encoder: maps an image batch ``(B, C, H, W)`` to features ``(B, D)``.
        train_dataset: ``(image, label)`` items used as the kNN bank and to fit
            the probe.
        test_dataset: ``(image, label)`` items that are scored.
        k: neighbours for the kNN vote.
        batch_size: images per encoder call.
        device: where to run the encoder; see :func:`extract_features`.
        transform: applied to each image batch before the encoder.

    Returns:
        ``{"knn_top1": float, "linear_probe_top1": float}``, each in ``[0, 1]``.
    """
    train_x, train_y = extract_features(encoder, train_dataset, batch_size, device, transform=transform)
    test_x, test_y = extract_features(encoder, test_dataset, batch_size, device, transform=transform)
    num_classes = int(torch.maximum(train_y.max(), test_y.max())) + 1
    return {
        "knn_top1": knn_accuracy(train_x, train_y, test_x, test_y, k=k, num_classes=num_classes),
        "linear_probe_top1": linear_probe(train_x, train_y, test_x, test_y, num_classes=num_classes),
    }


def half_split_knn_accuracy(features: Tensor, labels: Tensor, k: int = 20, seed: int = 0) -> float:
    """kNN top-1 within one labelled set: a seeded random half is the bank, the rest the queries.

    The protocol of the trainer's kNN monitor (``knn_every``), which has one
    evaluation set and no separate bank.

    Args:
        features: ``(N, D)`` features.
        labels: ``(N,)`` integer class indices.
        k: neighbours of the vote.
        seed: seed of the permutation that picks the halves.

    Returns:
        Top-1 accuracy of :func:`knn_accuracy` on the second half against the first.
    """
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    bank, query = order[: len(order) // 2], order[len(order) // 2:]
    return knn_accuracy(features[bank], labels[bank], features[query], labels[query], k=k)


def labelled_split(dataset: Dataset, seed: int = 0) -> tuple[Subset, Subset]:
    """A deterministic half-and-half split of a labelled dataset, class by class.

    Each class's items are shuffled with ``seed``; the first half (rounded up)
    becomes the bank (kNN memory, probe training set), the rest the queries.
    The two share no index. Labels come from ``dataset.labels`` when present,
    else from its items ``(image, label)``, and then an item that is ``None``
    (an unreadable file) is in neither half. A dataset with ``labels`` is
    not read; its unreadable items are left out later, by
    :func:`extract_features`.

    Returns:
        ``(bank, queries)``, two :class:`~torch.utils.data.Subset` with sorted indices.

    Raises:
        ValueError: with fewer than two classes, or no class of two or more items.
    """
    labels = getattr(dataset, "labels", None)
    if labels is None:
        present: list[tuple[int, int]] = []
        for i in range(len(dataset)):  # type: ignore[arg-type]
            item = dataset[i]
            if item is not None:
                present.append((i, int(item[1])))
        indices = torch.tensor([i for i, _ in present], dtype=torch.long)
        labels = torch.tensor([label for _, label in present], dtype=torch.long)
    else:
        labels = torch.as_tensor(labels)
        indices = torch.arange(len(labels))
    generator = torch.Generator().manual_seed(seed)
    bank: list[int] = []
    query: list[int] = []
    classes = torch.unique(labels)
    for label in classes.tolist():
        members = indices[labels == label]
        members = members[torch.randperm(len(members), generator=generator)].tolist()
        half = (len(members) + 1) // 2
        bank += members[:half]
        query += members[half:]
    if not query or len(classes) < 2:
        raise ValueError(f"scoring a representation needs at least two classes and a class of two or more "
                         f"images; got {len(labels)} image(s) in {len(classes)} class(es)")
    return Subset(dataset, sorted(bank)), Subset(dataset, sorted(query))
