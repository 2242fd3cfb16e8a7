"""``python -m byol_pytorch``: the ``byol-pytorch`` command (also under ``accelerate launch -m``)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
