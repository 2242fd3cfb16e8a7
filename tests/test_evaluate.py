"""Behaviour of the frozen-feature evaluation helpers in byol_pytorch.evaluate."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from byol_pytorch import BYOL
from byol_pytorch.evaluate import (
    FrozenEncoder,
    evaluate_encoder,
    extract_features,
    half_split_knn_accuracy,
    knn_accuracy,
    labelled_split,
    linear_probe,
)
from byol_pytorch.model import HiddenLayerEncoder, Normalize

from .conftest import assert_same_state, state_copy, tiny_cnn, write_digit_folder


def _clusters(n_per_class: int, num_classes: int = 3, dim: int = 16, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Gaussian blobs around far-apart centres, separable by angle and by a hyperplane."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(dim)[:num_classes] * 10.0
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    feats = centres[labels] + 0.5 * torch.randn(len(labels), dim, generator=g)
    return feats, labels


def _tiny_convnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),  # (B, 4, 2, 2): exercises the flatten of >2-d outputs
    )


def _image_dataset(n: int, num_classes: int = 3, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, 8, 8, generator=g)
    labels = torch.arange(n) % num_classes
    return TensorDataset(images, labels)


# --- knn_accuracy -----------------------------------------------------------


def test_knn_separable_clusters_is_perfect() -> None:
    train_x, train_y = _clusters(50, seed=0)
    test_x, test_y = _clusters(20, seed=1)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=20) == 1.0


def test_half_split_knn_is_the_seeded_halves_of_one_set() -> None:
    x, y = _clusters(30, seed=0)
    assert half_split_knn_accuracy(x, y, k=5) == 1.0
    shuffled = torch.randint(0, 3, (len(y),), generator=torch.Generator().manual_seed(1))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(7))
    bank, query = order[: len(y) // 2], order[len(y) // 2:]
    expected = knn_accuracy(x[bank], shuffled[bank], x[query], shuffled[query], k=5)
    assert half_split_knn_accuracy(x, shuffled, k=5, seed=7) == expected


def test_knn_random_labels_near_chance() -> None:
    g = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    train_y, test_y = torch.randint(0, 4, (400,), generator=g), torch.randint(0, 4, (400,), generator=g)
    acc = knn_accuracy(train_x, train_y, test_x, test_y, k=20)
    # Chance is 1/4; 400 queries put 5 standard deviations at 0.11 either side of it.
    assert abs(acc - 0.25) < 0.11


def test_knn_k1_uses_cosine_not_euclidean() -> None:
    # The query is euclidean-closest to (1, 1) but points almost the same way
    # as (10, 0); cosine similarity must pick the latter.
    train_x = torch.tensor([[10.0, 0.0], [1.0, 1.0]])
    train_y = torch.tensor([0, 1])
    query = torch.tensor([[1.0, 0.2]])
    assert torch.dist(query[0], train_x[1]) < torch.dist(query[0], train_x[0])
    assert knn_accuracy(train_x, train_y, query, torch.tensor([0]), k=1) == 1.0
    assert knn_accuracy(train_x, train_y, query, torch.tensor([1]), k=1) == 0.0


def test_knn_vote_is_weighted_by_temperature() -> None:
    # One near neighbour of class 0 against two farther ones of class 1:
    # a sharp vote follows the nearest, a flat one follows the majority.
    train_x = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8]])
    train_y = torch.tensor([0, 1, 1])
    query, label0 = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    assert knn_accuracy(train_x, train_y, query, label0, k=3, temperature=0.05) == 1.0
    assert knn_accuracy(train_x, train_y, query, label0, k=3, temperature=100.0) == 0.0


def test_knn_small_temperature_does_not_overflow() -> None:
    train_x, train_y = _clusters(30, seed=0)
    test_x, test_y = _clusters(10, seed=1)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=5, temperature=1e-3) == 1.0


def test_knn_k_larger_than_train_set_is_clamped() -> None:
    train_x, train_y = _clusters(2, seed=0)  # 6 training points
    test_x, test_y = _clusters(5, seed=1)
    acc = knn_accuracy(train_x, train_y, test_x, test_y, k=1000, temperature=0.07)
    assert acc == 1.0


def test_knn_chunking_does_not_change_result() -> None:
    g = torch.Generator().manual_seed(3)
    train_x, test_x = torch.randn(200, 8, generator=g), torch.randn(97, 8, generator=g)
    train_y, test_y = torch.randint(0, 5, (200,), generator=g), torch.randint(0, 5, (97,), generator=g)
    whole = knn_accuracy(train_x, train_y, test_x, test_y, k=7, batch_size=1024)
    chunked = knn_accuracy(train_x, train_y, test_x, test_y, k=7, batch_size=10)
    assert whole == chunked


@pytest.mark.parametrize("k", [0, -3])
def test_knn_rejects_k_below_one(k: int) -> None:
    x, y = _clusters(3)
    with pytest.raises(ValueError, match=rf"k must be >= 1, got {k}"):
        knn_accuracy(x, y, x, y, k=k)


def test_knn_rejects_feature_dim_mismatch() -> None:
    x, y = _clusters(3, dim=16)
    with pytest.raises(ValueError, match=r"same dim D.*\(9, 16\).*\(9, 8\)"):
        knn_accuracy(x, y, x[:, :8], y)


def test_knn_rejects_label_count_mismatch() -> None:
    x, y = _clusters(3)
    with pytest.raises(ValueError, match=r"train_labels \(8,\) does not match train_features \(9, 16\)"):
        knn_accuracy(x, y[:8], x, y)
    with pytest.raises(ValueError, match=r"test_labels \(8,\) does not match test_features \(9, 16\)"):
        knn_accuracy(x, y, x, y[:8])


def test_knn_rejects_non_2d_features() -> None:
    x, y = _clusters(3)
    with pytest.raises(ValueError, match=r"train_features must have shape \(N, D\), got \(9, 4, 4\)"):
        knn_accuracy(x.reshape(9, 4, 4), y, x, y)


def test_knn_rejects_too_small_num_classes() -> None:
    x, y = _clusters(3)
    with pytest.raises(ValueError, match=r"num_classes=2 is too small for the largest label 2"):
        knn_accuracy(x, y, x, y, num_classes=2)


# --- linear_probe -------------------------------------------------------------


def test_linear_probe_separable_clusters_is_perfect() -> None:
    train_x, train_y = _clusters(50, seed=0)
    test_x, test_y = _clusters(20, seed=1)
    assert linear_probe(train_x, train_y, test_x, test_y) == 1.0


def test_linear_probe_random_labels_near_chance() -> None:
    g = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    train_y, test_y = torch.randint(0, 4, (400,), generator=g), torch.randint(0, 4, (400,), generator=g)
    acc = linear_probe(train_x, train_y, test_x, test_y)
    assert abs(acc - 0.25) < 0.11  # chance, within 5 standard deviations of 400 queries


def test_linear_probe_deterministic_and_leaves_global_rng_alone() -> None:
    g = torch.Generator().manual_seed(1)
    train_x, test_x = torch.randn(300, 32, generator=g), torch.randn(100, 32, generator=g)
    train_y = (train_x[:, 0] + 0.5 * torch.randn(300, generator=g) > 0).long()
    test_y = (test_x[:, 0] > 0).long()
    state = torch.get_rng_state()
    first = linear_probe(train_x, train_y, test_x, test_y, epochs=20, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert linear_probe(train_x, train_y, test_x, test_y, epochs=20, seed=5) == first


def test_linear_probe_handles_constant_feature_and_no_grad_caller() -> None:
    train_x, train_y = _clusters(20, seed=0)
    test_x, test_y = _clusters(10, seed=1)
    train_x[:, 5] = 3.0  # zero std: must not produce NaNs
    test_x[:, 5] = 3.0
    with torch.no_grad():
        assert linear_probe(train_x, train_y, test_x, test_y) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, r"epochs must be >= 1, got 0"),
        ({"lr": 0.0}, r"lr must be > 0, got 0.0"),
        ({"weight_decay": -1.0}, r"weight_decay must be >= 0, got -1.0"),
    ],
)
def test_linear_probe_rejects_bad_hyperparameters(kwargs: dict[str, float], message: str) -> None:
    x, y = _clusters(3)
    with pytest.raises(ValueError, match=message):
        linear_probe(x, y, x, y, **kwargs)


def test_linear_probe_rejects_float_labels() -> None:
    x, y = _clusters(3)
    with pytest.raises(ValueError, match=r"train_labels must hold integer class indices, got dtype torch.float32"):
        linear_probe(x, y.float(), x, y)


# --- extract_features / evaluate_encoder ----------------------------------------


@pytest.mark.parametrize("training", [True, False])
def test_extract_features_shapes_and_restores_mode(training: bool) -> None:
    torch.manual_seed(0)
    net = _tiny_convnet().train(training)
    net[1].eval()  # a frozen BatchNorm inside a training model must stay frozen
    seen_modes: list[bool] = []
    net.register_forward_pre_hook(lambda module, _inputs: seen_modes.append(module.training))

    feats, labels = extract_features(net, _image_dataset(10), batch_size=4)

    assert seen_modes == [False, False, False]  # 10 items in batches of 4
    assert feats.shape == (10, 16) and feats.dtype == torch.float32 and feats.device.type == "cpu"
    assert labels.shape == (10,) and labels.dtype == torch.long
    assert torch.equal(labels, torch.arange(10) % 3)
    assert not feats.requires_grad
    assert net.training is training
    assert net[0].training is training and net[1].training is False


def test_extract_features_restores_mode_when_encoder_raises() -> None:
    net = _tiny_convnet().train()

    def broken(_images: Tensor) -> Tensor:
        raise RuntimeError("boom")

    net.register_forward_hook(lambda *_: broken(_[0]))
    with pytest.raises(RuntimeError, match="boom"):
        extract_features(net, _image_dataset(4))
    assert net.training and all(m.training for m in net.modules())


def test_extract_features_matches_direct_call_and_applies_transform() -> None:
    torch.manual_seed(0)
    net = _tiny_convnet().eval()
    data = _image_dataset(6)
    feats, _ = extract_features(net, data, batch_size=4, transform=lambda x: x * 2.0)
    with torch.no_grad():
        expected = net(data.tensors[0] * 2.0).flatten(1)
    torch.testing.assert_close(feats, expected)


def test_extract_features_accepts_plain_callable_and_int_labels() -> None:
    items = [(torch.full((2, 2), float(i)), i % 2) for i in range(5)]
    feats, labels = extract_features(lambda x: x.sum(dim=(1, 2)).unsqueeze(1), items, batch_size=2)
    assert torch.equal(feats, torch.tensor([[0.0], [4.0], [8.0], [12.0], [16.0]]))
    assert torch.equal(labels, torch.tensor([0, 1, 0, 1, 0]))


def test_extract_features_rejects_bad_items_and_outputs() -> None:
    with pytest.raises(ValueError, match=r"\(image, label\) pairs, got items of 3 fields"):
        extract_features(nn.Identity(), [(torch.zeros(2), 0, 1)])
    with pytest.raises(ValueError, match=r"shape \(B, D, \.\.\.\) with B=2, got \(2,\)"):
        extract_features(lambda x: x.sum(dim=1), [(torch.zeros(3), 0)] * 2)
    with pytest.raises(ValueError, match=r"dataset is empty"):
        extract_features(nn.Identity(), [])


def test_evaluate_encoder_returns_both_scores() -> None:
    torch.manual_seed(0)
    net = _tiny_convnet().train()
    scores = evaluate_encoder(net, _image_dataset(30, seed=0), _image_dataset(12, seed=1), k=5, batch_size=8)
    assert set(scores) == {"knn_top1", "linear_probe_top1"}
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in scores.values())
    assert net.training


def test_labelled_split_is_deterministic_per_class_and_disjoint() -> None:
    class Labelled(torch.utils.data.Dataset):
        labels = torch.tensor([0] * 5 + [1] * 4 + [2] * 1)

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i: int):
            return torch.zeros(3, 4, 4), int(self.labels[i])

    bank, query = labelled_split(Labelled())
    again_bank, _ = labelled_split(Labelled())
    assert bank.indices == again_bank.indices
    assert not set(bank.indices) & set(query.indices) and len(bank) + len(query) == 10
    assert sorted(Labelled.labels[query.indices].tolist()) == [0, 0, 1, 1]


@pytest.mark.parametrize("workers", [0, 2])
def test_unreadable_files_are_left_out_of_both_splits(tmp_path: Path, workers: int) -> None:
    from byol_pytorch.data import ImageFolderDataset

    readable, broken = write_digit_folder(tmp_path)
    dataset = ImageFolderDataset(tmp_path, 8, return_labels=True, on_unreadable="return_none")
    bank, queries = labelled_split(dataset)
    assert len(bank) + len(queries) == len(readable) + len(broken)  # the split reads no file

    pixels = nn.Flatten()  # features are the images themselves, so shared images would show
    bank_x, bank_y = extract_features(pixels, bank, batch_size=4, num_workers=workers)
    query_x, query_y = extract_features(pixels, queries, batch_size=4, num_workers=workers)

    def readable_of(split: torch.utils.data.Subset) -> list[int]:
        return [i for i in split.indices if Path(dataset.files[i]) in readable]

    assert len(bank_x) == len(readable_of(bank)) and len(query_x) == len(readable_of(queries))
    assert len(bank_x) + len(query_x) == len(readable)
    assert bank_y.tolist() == [int(dataset.labels[i]) for i in readable_of(bank)]
    assert query_y.tolist() == [int(dataset.labels[i]) for i in readable_of(queries)]
    assert torch.cdist(bank_x, query_x).min() > 0  # no image is in both
    assert dataset.skipped_files == {str(p) for p in broken}  # counted here, whoever read them


def test_labelled_split_leaves_out_none_items() -> None:
    items = [(torch.full((3, 2, 2), float(i)), i % 2) for i in range(8)]
    items[2] = items[5] = None
    bank, queries = labelled_split(items)
    assert sorted(bank.indices + queries.indices) == [0, 1, 3, 4, 6, 7]
    feats, labels = extract_features(nn.Flatten(), items)
    assert feats[:, 0].tolist() == [0.0, 1.0, 3.0, 4.0, 6.0, 7.0] and labels.tolist() == [0, 1, 1, 0, 0, 1]
    with pytest.raises(ValueError, match=r"dataset has only None items"):
        extract_features(nn.Flatten(), [None, None])


def test_labelled_split_needs_two_classes() -> None:
    one_class = TensorDataset(torch.zeros(4, 3, 4, 4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"at least two classes .* got 4 image\(s\) in 1 class"):
        labelled_split(one_class)


# --- FrozenEncoder ----------------------------------------------------------------


def _no_hooks(net: nn.Module) -> bool:
    return not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


@pytest.mark.parametrize("trace", [True, False], ids=["traced", "hook"])
def test_frozen_encoder_reads_eval_features_and_changes_nothing(trace: bool) -> None:
    net = tiny_cnn().train()  # its batch norm in training mode would use and update batch statistics
    net.pool.eval()  # mixed flags must come back mixed
    net.conv.weight.requires_grad_(False)
    before, modes = state_copy(net), [m.training for m in net.modules()]
    images = torch.rand(6, 3, 16, 16)
    with torch.no_grad():
        expected = HiddenLayerEncoder(copy.deepcopy(net).eval(), "flatten")(Normalize()(images))
        batch_statistics = HiddenLayerEncoder(copy.deepcopy(net), "flatten")(Normalize()(images))
    assert not torch.allclose(expected, batch_statistics)

    if trace:
        frozen = FrozenEncoder(net, "flatten", normalize=Normalize())
    else:  # a network FX cannot trace is cut by a hook that must not outlive the call
        frozen = FrozenEncoder(HiddenLayerEncoder(net, "flatten", trace=False), normalize=Normalize())
    assert frozen.encoder.mode == ("traced" if trace else "hook")
    features = frozen(images)

    assert features.shape == (6, 8) and not features.requires_grad
    torch.testing.assert_close(features, expected, rtol=0, atol=0)
    assert_same_state(before, state_copy(net))  # running stats and num_batches_tracked included
    assert [m.training for m in net.modules()] == modes
    assert _no_hooks(net) and not net.conv.weight.requires_grad and net.fc.weight.requires_grad
    assert net.fc.weight.grad is None


def test_frozen_encoder_restores_modes_when_the_network_raises() -> None:
    net = tiny_cnn().train()
    net.bn.eval()

    def boom(*_: object) -> None:
        raise RuntimeError("boom")

    net.relu.register_forward_hook(boom)
    with pytest.raises(RuntimeError, match="boom"):
        FrozenEncoder(net)(torch.rand(2, 3, 8, 8))
    assert net.training and net.conv.training and not net.bn.training


def test_frozen_encoder_of_a_learner_is_its_normalised_online_encoder() -> None:
    net = tiny_cnn()
    learner = BYOL(net, image_size=16, hidden_layer="flatten", projection_size=8, projection_hidden_size=16)
    learner.train()
    before = state_copy(learner)
    images = torch.rand(4, 3, 16, 16)
    features = FrozenEncoder(learner)(images)
    assert_same_state(before, state_copy(learner))
    assert learner.training and all(m.training for m in net.modules())
    learner.eval()
    with torch.no_grad():
        expected = learner(images, return_embedding=True, return_projection=False)
    torch.testing.assert_close(features, expected, rtol=0, atol=0)


def test_frozen_encoder_refuses_what_it_cannot_protect() -> None:
    learner = BYOL(tiny_cnn(), image_size=16, hidden_layer="flatten", projection_size=8, projection_hidden_size=16)
    with pytest.raises(ValueError, match=r"takes the learner's own hidden_layer, got hidden_layer='fc'"):
        FrozenEncoder(learner, hidden_layer="fc")
    with pytest.raises(ValueError, match=r"learner's own normalize"):
        FrozenEncoder(learner, normalize=Normalize())
    with pytest.raises(TypeError, match=r"got function; a plain function cannot be put in eval mode"):
        FrozenEncoder(lambda x: x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"hidden_layer 'nope' not found"):
        FrozenEncoder(tiny_cnn(), "nope")


def test_extract_features_leaves_a_training_network_bit_identical() -> None:
    net = _tiny_convnet().train()
    before = state_copy(net)
    extract_features(net, _image_dataset(10), batch_size=4)
    assert_same_state(before, state_copy(net))
    assert net[1].num_batches_tracked.item() == 0 and net.training
