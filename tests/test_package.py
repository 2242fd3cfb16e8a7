"""The package surface: what users import, and that the model side stays free of accelerate."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import types

import pytest
import torch

import byol_pytorch

# Where each public name is defined; the package's top level only re-exports them.
HOMES = {
    "BYOL": "byol_pytorch.model",
    "BYOLAugmentation": "byol_pytorch.model",
    "BYOLOutput": "byol_pytorch.model",
    "CropSpec": "byol_pytorch.sizes",
    "FrozenEncoder": "byol_pytorch.model",
    "cosine_tau": "byol_pytorch.model",
    "DigitsDataset": "byol_pytorch.data",
    "ImageFolderDataset": "byol_pytorch.data",
    "LoaderCrops": "byol_pytorch.data",
    "MockDataset": "byol_pytorch.data",
    "DiskFullError": "byol_pytorch.errors",
    "NonFiniteLossError": "byol_pytorch.errors",
    "NonFiniteStateError": "byol_pytorch.errors",
    "LARS": "byol_pytorch.optim",
    "PhotoDataset": "byol_pytorch.data",
    "PhotoTransform": "byol_pytorch.data",
    "TrainingStream": "byol_pytorch.data",
    "BYOLTrainer": "byol_pytorch.trainer",
    "TrainerConfig": "byol_pytorch.config",
}


def test_model_side_does_not_import_accelerate_until_the_trainer_is_asked_for() -> None:
    code = (
        "import sys, torch, byol_pytorch; from byol_pytorch import BYOL, MockDataset; import byol_pytorch.evaluate\n"
        # The report reads metrics.jsonl; neither it nor the options need the trainer.
        "import byol_pytorch.report, byol_pytorch.metrics, byol_pytorch.config, byol_pytorch.health\n"
        "BYOL(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()), 8, hidden_layer=-1,\n"
        "     projection_hidden_size=8)\n"
        "assert 'accelerate' not in sys.modules, 'accelerate was imported'\n"
        "trainer = byol_pytorch.BYOLTrainer\n"
        "assert 'accelerate' in sys.modules and trainer is sys.modules['byol_pytorch.trainer'].BYOLTrainer\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_all_lists_every_public_name_once_and_nothing_else() -> None:
    exported = byol_pytorch.__all__
    assert len(exported) == len(set(exported))
    assert set(exported) == {*HOMES, "__version__"}
    # Nothing of the package's own at the top level is missing from __all__ (submodules aside).
    public = {name for name, value in vars(byol_pytorch).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)
              and getattr(value, "__module__", "").startswith("byol_pytorch")}
    assert public <= set(exported), public - set(exported)


@pytest.mark.parametrize("name", sorted(HOMES))
def test_public_name_is_the_object_its_module_defines(name: str) -> None:
    obj = getattr(byol_pytorch, name)
    assert obj is getattr(importlib.import_module(HOMES[name]), name)
    assert obj.__name__ == name and obj.__module__.startswith(HOMES[name])
    assert inspect.getdoc(obj), f"{name} has no docstring"


def test_kinds_of_the_public_names() -> None:
    for name in ("NonFiniteLossError", "NonFiniteStateError", "DiskFullError"):
        assert issubclass(getattr(byol_pytorch, name), Exception), name
    assert issubclass(byol_pytorch.BYOL, torch.nn.Module) and issubclass(byol_pytorch.FrozenEncoder, torch.nn.Module)
    assert issubclass(byol_pytorch.LARS, torch.optim.Optimizer)
    assert issubclass(byol_pytorch.MockDataset, torch.utils.data.Dataset)
    assert byol_pytorch.cosine_tau(0, 10, 0.99) == pytest.approx(0.99)


def test_version_and_unknown_names() -> None:
    from importlib.metadata import version

    assert byol_pytorch.__version__ == version("byol-pytorch")
    with pytest.raises(AttributeError, match="module 'byol_pytorch' has no attribute 'Trainer'"):
        byol_pytorch.Trainer  # noqa: B018


def test_the_long_description_links_are_absolute() -> None:
    """PyPI shows the README from setup.py; every link in it must work there, so none may be relative."""
    import ast
    import re
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "setup.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    kept = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)) or (
        isinstance(node, ast.Assign) and node.targets[0].id in ("VERSION", "REPOSITORY")) or (  # type: ignore[attr-defined]
        isinstance(node, ast.FunctionDef) and node.name == "long_description")]
    namespace: dict = {"__file__": str(source)}
    exec(compile(ast.Module(body=kept, type_ignores=[]), str(source), "exec"), namespace)  # noqa: S102
    text = namespace["long_description"]()
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets and all(re.match(r"https?://|#", target) for target in targets), [
        t for t in targets if not re.match(r"https?://|#", t)]
    version = namespace["VERSION"]
    assert f"/raw/v{version}/diagram.png" in text and version == "1.0.0"
