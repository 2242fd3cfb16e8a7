"""``byol-pytorch eval``: score a trained run against the same network at random initialisation."""

from __future__ import annotations

import argparse
import json

from ..devices import set_cpu_threads
from .common import pick_device
from .datasets import evaluation_sets
from .runs import load_trained, read_run
from .scoring import score_backbones, score_table


def cmd_eval(args: argparse.Namespace) -> int:
    run_dir, spec, state = read_run(args.checkpoint)
    device = pick_device(args.device)
    if device.type == "cpu":
        set_cpu_threads(args.threads)
    sets = evaluation_sets(args.data, int(spec["image_size"]), "--data", image_key=args.image_key,
                           label_column=args.label_column)
    trained = load_trained(spec, state, run_dir)
    scores = score_backbones(spec, trained, sets.bank, sets.query, k=args.k, device=device, progress=args.progress)
    print(f"{run_dir}: {spec['model']} {spec['hidden_layer']!r} features, {sets.description()}, k={args.k}")
    print(score_table(scores))
    if args.json:
        print(json.dumps({"run": str(run_dir), "k": args.k, **scores}))
    return 0
