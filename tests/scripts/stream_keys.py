"""``byol-pytorch train`` under ``accelerate launch``, each process writing the sample keys it trained on.

Run by tests/test_stream_processes.py: two CPU processes (gloo) train on tar
shards; every process writes ``$BYOL_DUMP/keys-rank<R>.json``, the
``[key, pass]`` of each image of each batch its training loop consumed.
"""

import json
import os
import sys
from pathlib import Path

from byol_pytorch.cli import main
from byol_pytorch.data.streams import StreamProgress

_consume = StreamProgress.consume
_KEYS: list[list] = []


def _consume_and_record(self: StreamProgress, batch):  # type: ignore[no-untyped-def]
    _KEYS.extend([key, passed] for key, passed in batch.keys)
    return _consume(self, batch)


if __name__ == "__main__":
    StreamProgress.consume = _consume_and_record  # type: ignore[method-assign]
    code = main(sys.argv[1:])
    rank = int(os.environ.get("RANK", "0"))
    dump = Path(os.environ["BYOL_DUMP"])
    dump.mkdir(parents=True, exist_ok=True)
    (dump / f"keys-rank{rank}.json").write_text(json.dumps(_KEYS))
    sys.exit(code)
