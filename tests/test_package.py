"""The package surface: what users import, and that the model side stays free of accelerate."""

from __future__ import annotations

import subprocess
import sys

import byol_pytorch


def test_model_side_does_not_import_accelerate() -> None:
    code = (
        "import sys, torch; from byol_pytorch import BYOL, MockDataset; import byol_pytorch.evaluate; "
        "BYOL(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()), 8, hidden_layer=-1, "
        "projection_hidden_size=8); assert 'accelerate' not in sys.modules, 'accelerate was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_public_names_resolve() -> None:
    for name in byol_pytorch.__all__:
        assert getattr(byol_pytorch, name) is not None, name
    assert byol_pytorch.BYOLTrainer.__name__ == "BYOLTrainer"
