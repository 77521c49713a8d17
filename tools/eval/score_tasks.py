#!/usr/bin/env python3
"""Scores `dlm generate` output on synthetic task prompts with tools/data/tasks.py's checker.

  python3 tools/eval/score_tasks.py prompts TASKS.jsonl TASK N > prompts.txt     # the first N prompts of TASK
  python3 tools/eval/score_tasks.py items TASKS.jsonl TASK N > items.jsonl       # the same with "expected"
  dlm generate -m MODEL --prompts prompts.txt ... > out.jsonl
  python3 tools/eval/score_tasks.py score TASKS.jsonl TASK N out.jsonl          # accuracy, one JSON line

A generation counts as correct when tasks.check accepts its text (which ends at the first stop token),
stripped of surrounding whitespace.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "data"))
import tasks  # noqa: E402


def records(path, task, count):
    chosen = [r for r in map(json.loads, Path(path).read_text(encoding="utf-8").splitlines()) if r["task"] == task]
    return chosen[:count]


def main():
    mode, path, task, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    chosen = records(path, task, count)
    if mode == "prompts":
        for record in chosen:
            print(record["prompt"])
        return
    if mode == "items":  # dlm compare scores "expected" by exact match; each task has one right answer
        for i, record in enumerate(chosen):
            print(json.dumps({"id": f"{task}{i}", "prompt": record["prompt"], "expected": record["answer"]}))
        return
    outputs = [json.loads(line) for line in Path(sys.argv[5]).read_text(encoding="utf-8").splitlines()]
    assert len(outputs) == len(chosen), f"{len(outputs)} generations for {len(chosen)} prompts"
    correct = 0
    for record, output in zip(chosen, outputs):
        assert output["prompt"] == record["prompt"], (output["prompt"], record["prompt"])
        correct += "text" in output and tasks.check(task, record["prompt"], output["text"].strip())
    print(json.dumps({"task": task, "prompts": len(chosen), "correct": correct,
                      "accuracy": round(correct / len(chosen), 4)}))


if __name__ == "__main__":
    main()
