"""The ``byol-pytorch`` command: pretrain, evaluate and embed from a shell.

::

    byol-pytorch train                                  # the built-in demo: digits, ResNet-18, a few minutes
    byol-pytorch train --data DIR --model resnet50 --image-size 128 --steps 20000 --out runs/mine
    byol-pytorch train --out runs/mine --resume         # continue an interrupted run
    byol-pytorch eval --checkpoint runs/mine [--data LABELLED_DIR]
    byol-pytorch embed --checkpoint runs/mine --data DIR --out embeddings.npy
    byol-pytorch train --data 'shards/train-{000000..000127}.tar'   # also: a save_to_disk folder, .parquet files
    accelerate launch -m byol_pytorch train ...         # several GPUs or processes

``train`` has one flag per field of :class:`byol_pytorch.TrainerConfig`
(underscores become dashes, booleans get ``--no-...``), generated from the
dataclass, plus the flags that choose data and model. Its defaults are those
of the trainer except where the built-in demo needs others (``CLI_DEFAULTS``).

A run folder holds, besides the trainer's checkpoints, ``net.pt`` and
``metrics.jsonl``:

* ``run.json``: what is needed to rebuild the network (model name, image
  size, hidden layer, stem, channels, classes, seed); ``eval`` and ``embed``
  read it;
* ``summary.json`` and ``report.png``: written at the end, with kNN and
  linear-probe accuracy of the trained network next to the same architecture
  at random initialisation (same seed).

Bad input (a missing folder, an unknown model, an impossible image size, an
existing run folder without ``--resume``, ...) ends with one line on stderr,
``byol-pytorch: error: ...``, and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from ..errors import CheckpointError, DiskFullError, NonFiniteLossError, NonFiniteStateError, OptionError, is_disk_full
from .common import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, PROG, CLIError, Parser, first_line, image_size_arg, positive_int_arg
from .embed import cmd_embed
from .eval import cmd_eval
from .flags import CLI_DEFAULTS, add_config_flags, add_source_flags, train_flag_defaults
from .networks import DEFAULT_FOLDER_IMAGE_SIZE, DEFAULT_IMAGE_SIZE, DEFAULT_MODEL, HIDDEN_LAYER_TABLE, SMALL_IMAGE_SIDE
from .train import AUGMENTATIONS, cmd_train

__all__ = ["CLIError", "build_parser", "main"]


def _run_reader_command(commands: argparse._SubParsersAction, name: str, help: str,
                        description: str) -> argparse.ArgumentParser:
    """A command that reads a trained run (eval, embed), with the flags they share."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="a run folder of 'train'")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--threads", type=positive_int_arg, default=None, metavar="N", help="CPU threads")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="progress bar (default: on)")
    return parser


def _add_train_command(commands: argparse._SubParsersAction) -> None:
    """``train``: one flag per TrainerConfig field plus data, model and scoring flags."""
    train = commands.add_parser(
        "train", help="pretrain a network with BYOL (default: ResNet-18 on the built-in digits)",
        description="Pretrain a network with BYOL. With no --data it trains on scikit-learn's handwritten digits "
                    "(built in) and scores the result against the same network at random initialisation.",
    )
    train.add_argument("--data", metavar="SOURCE", help="training images: a folder (searched recursively), WebDataset "
                       "tar shards ('shards/train-{000000..000127}.tar', read as a stream), a datasets save_to_disk "
                       "folder, or .parquet files (default: the built-in digits)")
    train.add_argument("--eval-data", metavar="SOURCE", help="labelled images to score the representation on, split "
                       "50/50: a folder with one sub-folder per class, shards with .cls labels, or Hugging Face data "
                       "with --label-column (default: the digits' test split when training on digits)")
    train.add_argument("--model", default=None, help="a torchvision classification model (or timm, if installed), "
                       f"randomly initialised (default: {DEFAULT_MODEL}). The representation is taken from: "
                       + "; ".join(f"{layer!r} for {what}" for layer, what in HIDDEN_LAYER_TABLE))
    train.add_argument("--image-size", type=image_size_arg, default=None, metavar="N",
                       help=f"side of the training views in pixels, {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} "
                            f"(default: {DEFAULT_IMAGE_SIZE} on the built-in digits, {DEFAULT_FOLDER_IMAGE_SIZE} "
                            "(the paper's) on a --data folder)")
    train.add_argument("--small-image-stem", action=argparse.BooleanOptionalAction, default=None,
                       help=f"replace a ResNet's 7x7/2 stem and max-pool by a 3x3/1 conv (the CIFAR variant); "
                            f"default: auto, on for ResNet-like models below {SMALL_IMAGE_SIDE} px when training on "
                            "a GPU (on a CPU it costs ~16x the compute)")
    train.add_argument("--augment", choices=AUGMENTATIONS, default=None,
                       help="the views: 'paper' (BYOL's pipelines for photos) or 'digits' (for centred characters: "
                            "no flips or colour, crops keeping 80-100%% of the image, small rotations and shifts); "
                            "default: auto, 'digits' on the built-in digits, else 'paper'")
    train.add_argument("--final-eval", action=argparse.BooleanOptionalAction, default=True,
                       help="at the end, score the trained network against its random initialisation "
                            "(kNN and linear probe; default: on)")
    train.add_argument("--simsiam", action="store_true", help="SimSiam instead of BYOL (same as --no-use-momentum)")
    train.add_argument("--threads", type=positive_int_arg, default=None, metavar="N",
                       help="CPU threads (default: torch's, usually one per core). Results depend on it "
                            "(float sums are ordered by thread); on cores other jobs keep busy, 1 can be much faster")
    add_source_flags(train, image_key=False, label_column=True)
    add_config_flags(train, train_flag_defaults())
    train.set_defaults(handler=cmd_train)


def _add_eval_command(commands: argparse._SubParsersAction) -> None:
    """``eval``: scores of a trained run against its random initialisation."""
    evaluate = _run_reader_command(
        commands, "eval", help="score a trained run against random initialisation",
        description="kNN top-1 (cosine) and linear-probe top-1 of a run's network and of the same architecture "
                    "at random initialisation. Without --data: the digits' train split is the bank and its test "
                    "split the queries; a labelled folder is split 50/50 per class.")
    evaluate.add_argument("--data", metavar="SOURCE", default=None,
                          help="labelled images: a folder with one sub-folder per class, tar shards with .cls "
                          "labels, a datasets save_to_disk folder or .parquet files with --label-column "
                          "(default: the built-in digits)")
    add_source_flags(evaluate, image_key=True, label_column=True)
    evaluate.add_argument("--k", type=positive_int_arg, default=20, metavar="N",
                          help="neighbours of the kNN vote (default: 20)")
    evaluate.add_argument("--json", action="store_true", help="also print the scores as one JSON line")
    evaluate.set_defaults(handler=cmd_eval)


def _add_embed_command(commands: argparse._SubParsersAction) -> None:
    """``embed``: the representation of every image of a folder, to a file."""
    embed = _run_reader_command(
        commands, "embed", help="write the representation of every image of a folder",
        description="Embeddings (the hidden-layer representation, images normalised as in training) of every "
                    "image under a folder, in sorted path order: FILE.npy plus FILE.npy.files.txt with the paths, "
                    "FILE.pt holding {'embeddings': tensor, 'files': list}, FILE.safetensors (tensor 'embeddings', "
                    "the paths as a JSON list under the metadata key 'files') or FILE.parquet (columns path and "
                    "embedding; needs pyarrow).")
    embed.add_argument("--data", required=True, metavar="SOURCE", help="images: a folder (searched recursively), tar "
                       "shards, a datasets save_to_disk folder or .parquet files")
    add_source_flags(embed, image_key=True, label_column=False)
    embed.add_argument("--out", required=True, metavar="FILE", help="FILE.npy, .pt, .safetensors or .parquet")
    embed.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    embed.add_argument("--batch-size", type=positive_int_arg, default=256, metavar="N",
                       help="images per forward pass (default: 256)")
    embed.set_defaults(handler=cmd_embed)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description="BYOL self-supervised pretraining of any image network.",
                     epilog=f"'{PROG} COMMAND --help' shows the options of a command.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)

    for add in (_add_train_command, _add_eval_command, _add_embed_command):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status: 2 for bad input, 1 for a run that had to stop.

    Only the errors that mean bad input or a stopped run are caught; anything
    else is a bug and keeps its traceback.
    """
    shown = warnings.formatwarning
    # A warning reads as one line of the command, not as a line of the library's source.
    warnings.formatwarning = lambda message, category, *_: f"{PROG}: warning: {message}\n"  # type: ignore[assignment]
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args))
    except SystemExit as exit_:  # --help, --version, and a run stopped by a signal (TrainingStopped)
        return exit_.code if isinstance(exit_.code, int) else 0
    except OptionError as err:  # the trainer's option, as the flag that set it
        return _error(f"--{err.option.replace('_', '-')} {err.problem}", 2)
    except (CLIError, CheckpointError, FileNotFoundError, FileExistsError, NotADirectoryError) as err:
        return _error(first_line(err), 2)
    except (NonFiniteLossError, NonFiniteStateError, DiskFullError) as err:
        return _error(first_line(err), 1)
    except OSError as err:
        if not is_disk_full(err):
            raise
        where = f" writing {err.filename}" if err.filename else ""
        return _error(f"the disk is full{where}: {err.strerror}", 1)
    finally:
        warnings.formatwarning = shown


def _error(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status
