#!/usr/bin/env python3
"""Zeroes the MASK id's row of a random LLaDA checkpoint's LM head, in place, so that MASK is never the argmax.

  python3 tools/bench/zero_mask_logit.py CKPT_DIR

With random weights the MASK id (126336 in LLaDA-8B) can be the argmax at a masked position. dlm never
draws it (samplers/README.md), but the reference's code commits it, which leaves the position masked, so the
two sides would decode different canvases. A zero row gives MASK the logit 0, below the largest of the other 126,463 random
logits in practice always. Timing does not depend on the values, and dlm and the reference read the same
files. Standard library only: the row's bytes are overwritten where the safetensors header puts them. Refuses
a checkpoint whose LM head is tied to the embeddings (the row is also MASK's input embedding there).
Prints what it did; running it again changes nothing.
"""
import json
import struct
import sys
from pathlib import Path

LM_HEADS = ("model.transformer.ff_out.weight", "lm_head.weight")
ITEM_BYTES = {"BF16": 2, "F16": 2, "F32": 4}


def fail(message):
    sys.exit(f"zero_mask_logit: {message}")


def main():
    if len(sys.argv) != 2:
        fail("usage: zero_mask_logit.py CKPT_DIR")
    directory = Path(sys.argv[1])
    config_path = directory / "config.json"
    if not config_path.is_file():
        fail(f"{config_path}: missing (not a model directory)")
    config = json.loads(config_path.read_text())
    if config.get("weight_tying") or config.get("tie_word_embeddings"):
        fail(f"{config_path}: the LM head is tied to the embeddings; not changed")
    mask_id = config.get("mask_token_id")
    if mask_id is None:
        fail(f"{config_path}: no mask_token_id")
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        found = [(name, directory / weight_map[name]) for name in LM_HEADS if name in weight_map]
    else:
        found = [(name, path) for path in sorted(directory.glob("*.safetensors")) for name in LM_HEADS]
    for name, path in found:
        with open(path, "r+b") as f:
            length = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(length))
            if name not in header:
                continue
            info = header[name]
            rows, width = info["shape"]
            if info["dtype"] not in ITEM_BYTES:
                fail(f"{path}: {name} has dtype {info['dtype']}; expected one of {', '.join(ITEM_BYTES)}")
            if not 0 <= mask_id < rows:
                fail(f"{path}: mask_token_id {mask_id} is outside {name}'s {rows} rows")
            row_bytes = width * ITEM_BYTES[info["dtype"]]
            f.seek(8 + length + info["data_offsets"][0] + mask_id * row_bytes)
            f.write(bytes(row_bytes))
        print(f"{path}: {name} row {mask_id} ({row_bytes} bytes) set to zero")
        return
    fail(f"{directory}: no LM head tensor ({' or '.join(LM_HEADS)}) found")


if __name__ == "__main__":
    main()
