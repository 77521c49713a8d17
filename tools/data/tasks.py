#!/usr/bin/env python3
"""Synthetic tasks with checkable answers: addition, sorting, reversal and 4x4 / 9x9 sudoku.

Each task is a (prompt, answer) pair of plain strings:

  add      "12345+678="                  -> "13023"
  sort     "sort 5 3 91 1 7:"            -> "1 3 5 7 91"
  reverse  "reverse a b c d e:"          -> "e d c b a"
  sudoku4  "sudoku 1.3./.4../..../2..1:" -> "1234/3412/4123/2341"   (rows joined by '/', '.' = blank)
  sudoku9  the same layout with 9 rows of 9 and 3x3 boxes

`generate(task, rng)` draws one pair from a `random.Random`. `check(task, prompt, answer)` says whether an answer
is correct by reading the prompt alone, independently of the generator (a sudoku answer is correct when it fills
the blanks of the given grid by the rules, whichever solution it is), and never raises on malformed input, so it
can score model outputs. Every generated sudoku has exactly one solution.

  python3 tools/data/tasks.py verify data/tasks_*.jsonl   # checks every record, and sudoku uniqueness
"""
from __future__ import annotations

import json
import random
import re
import sys

TASKS = ("add", "sort", "reverse", "sudoku4", "sudoku9")

ADD_MAX_DIGITS = 5
SORT_COUNT = (3, 8)
SORT_MAX_VALUE = 99
REVERSE_COUNT = (3, 10)
LETTERS = "abcdefghijklmnopqrstuvwxyz"
# Blanks per puzzle (inclusive) and box side for each sudoku size.
SUDOKU = {"sudoku4": (4, 2, (4, 10)), "sudoku9": (9, 3, (10, 35))}

_NUMBER = re.compile(r"0|[1-9][0-9]*")


# ---------------------------------------------------------------------------------------------------- generation


def _draw_operand(rng: random.Random) -> int:
    digits = rng.randint(1, ADD_MAX_DIGITS)
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, 10**digits - 1)


def _gen_add(rng: random.Random) -> tuple[str, str]:
    a, b = _draw_operand(rng), _draw_operand(rng)
    return f"{a}+{b}=", str(a + b)


def _gen_sort(rng: random.Random) -> tuple[str, str]:
    values = [rng.randint(0, SORT_MAX_VALUE) for _ in range(rng.randint(*SORT_COUNT))]
    return f"sort {' '.join(map(str, values))}:", " ".join(map(str, sorted(values)))


def _gen_reverse(rng: random.Random) -> tuple[str, str]:
    letters = [rng.choice(LETTERS) for _ in range(rng.randint(*REVERSE_COUNT))]
    return f"reverse {' '.join(letters)}:", " ".join(reversed(letters))


class Geometry:
    """Cell indexing of an n x n sudoku with b x b boxes (n = b * b) and the peers of every cell."""

    def __init__(self, box: int):
        self.box = box
        self.n = box * box
        self.cells = self.n * self.n
        self.full = (1 << self.n) - 1  # candidate bit d-1 stands for digit d
        self.units = []  # (row, col, box) unit index of each cell
        for cell in range(self.cells):
            r, c = divmod(cell, self.n)
            self.units.append((r, self.n + c, 2 * self.n + (r // box) * box + c // box))


GEOMETRY = {4: Geometry(2), 9: Geometry(3)}


def count_solutions(grid: list[int], geo: Geometry, limit: int = 2) -> int:
    """Number of completions of grid (0 = blank), counted up to limit; 0 if the givens already conflict."""
    used = [0] * (3 * geo.n)
    blanks = []
    for cell, digit in enumerate(grid):
        if digit == 0:
            blanks.append(cell)
            continue
        bit = 1 << (digit - 1)
        for u in geo.units[cell]:
            if used[u] & bit:
                return 0
            used[u] |= bit
    return _search(blanks, used, geo, limit)


def _search(blanks: list[int], used: list[int], geo: Geometry, limit: int) -> int:
    if not blanks:
        return 1
    # Branch on the most constrained blank (fewest candidates).
    best_i, best_free, best_count = -1, 0, geo.n + 1
    for i, cell in enumerate(blanks):
        r, c, b = geo.units[cell]
        free = geo.full & ~(used[r] | used[c] | used[b])
        count = free.bit_count()
        if count < best_count:
            best_i, best_free, best_count = i, free, count
            if count <= 1:
                break
    if best_count == 0:
        return 0
    cell = blanks[best_i]
    rest = blanks[:best_i] + blanks[best_i + 1 :]
    r, c, b = geo.units[cell]
    found = 0
    free = best_free
    while free:
        bit = free & -free
        free ^= bit
        used[r] |= bit
        used[c] |= bit
        used[b] |= bit
        found += _search(rest, used, geo, limit - found)
        used[r] ^= bit
        used[c] ^= bit
        used[b] ^= bit
        if found >= limit:
            break
    return found


def _all_grids(geo: Geometry) -> list[list[int]]:
    """Every complete grid, by exhaustive search (only for 4x4: there are 288)."""
    grids: list[list[int]] = []

    def fill(grid: list[int], cell: int) -> None:
        if cell == geo.cells:
            grids.append(grid[:])
            return
        r, c, b = geo.units[cell]
        for digit in range(1, geo.n + 1):
            if all(grid[p] != digit for p in range(cell) if set(geo.units[p]) & {r, c, b}):
                grid[cell] = digit
                fill(grid, cell + 1)
        grid[cell] = 0

    fill([0] * geo.cells, 0)
    return grids


_GRIDS4 = _all_grids(GEOMETRY[4])


def _permuted_grid(geo: Geometry, rng: random.Random) -> list[int]:
    """A complete grid from the base pattern under random validity-preserving symmetries: digit relabeling, row
    swaps within bands, band swaps, the same for columns and stacks, and transposition."""
    n, b = geo.n, geo.box

    def lines() -> list[int]:
        bands = rng.sample(range(b), b)
        return [band * b + inner for band in bands for inner in rng.sample(range(b), b)]

    labels = rng.sample(range(1, n + 1), n)
    rows, cols = lines(), lines()
    transpose = rng.random() < 0.5
    grid = []
    for r in range(n):
        for c in range(n):
            rr, cc = (cols[c], rows[r]) if transpose else (rows[r], cols[c])
            grid.append(labels[(rr * b + rr // b + cc) % n])
    return grid


def _carve(solution: list[int], geo: Geometry, blanks: int, rng: random.Random) -> list[int] | None:
    """Blanks cells one at a time in random order, keeping a blank only while the solution stays unique; None if
    the grid runs out of removable cells before reaching the target."""
    grid = solution[:]
    removed = 0
    for cell in rng.sample(range(geo.cells), geo.cells):
        keep = grid[cell]
        grid[cell] = 0
        if _has_other_solution(grid, geo, cell, keep):
            grid[cell] = keep
            continue
        removed += 1
        if removed == blanks:
            return grid
    return None


def _has_other_solution(grid: list[int], geo: Geometry, cell: int, value: int) -> bool:
    """Whether grid (which has the solution with `value` at the blank `cell`) has a solution with another value
    there. A cell whose givens leave one candidate cannot change, so the solver runs only when needed."""
    r, c, b = geo.units[cell]
    seen = 0
    for other, digit in enumerate(grid):
        if digit and set(geo.units[other]) & {r, c, b}:
            seen |= 1 << (digit - 1)
    alternatives = geo.full & ~seen & ~(1 << (value - 1))
    while alternatives:
        bit = alternatives & -alternatives
        alternatives ^= bit
        grid[cell] = bit.bit_length()
        solvable = count_solutions(grid, geo, limit=1) > 0
        grid[cell] = 0
        if solvable:
            return True
    return False


def format_grid(grid: list[int], n: int) -> str:
    text = "".join(str(d) if d else "." for d in grid)
    return "/".join(text[i : i + n] for i in range(0, n * n, n))


def _gen_sudoku(task: str, rng: random.Random) -> tuple[str, str]:
    n, _, (low, high) = SUDOKU[task]
    geo = GEOMETRY[n]
    while True:
        solution = rng.choice(_GRIDS4)[:] if n == 4 else _permuted_grid(geo, rng)
        puzzle = _carve(solution, geo, rng.randint(low, high), rng)
        if puzzle is not None:
            return f"sudoku {format_grid(puzzle, n)}:", format_grid(solution, n)


_GENERATORS = {
    "add": _gen_add,
    "sort": _gen_sort,
    "reverse": _gen_reverse,
    "sudoku4": lambda rng: _gen_sudoku("sudoku4", rng),
    "sudoku9": lambda rng: _gen_sudoku("sudoku9", rng),
}


def generate(task: str, rng: random.Random) -> tuple[str, str]:
    """One (prompt, answer) pair of the task, drawn from rng."""
    return _GENERATORS[task](rng)


# ------------------------------------------------------------------------------------------------------- checking


def _numbers(text: str) -> list[int] | None:
    """Space-separated canonical non-negative integers (no leading zeros, single spaces), or None."""
    parts = text.split(" ")
    if not all(_NUMBER.fullmatch(p) for p in parts):
        return None
    return [int(p) for p in parts]


def _check_add(prompt: str, answer: str) -> bool:
    m = re.fullmatch(r"(0|[1-9][0-9]*)\+(0|[1-9][0-9]*)=", prompt)
    return bool(m) and bool(_NUMBER.fullmatch(answer)) and int(answer) == int(m[1]) + int(m[2])


def _check_sort(prompt: str, answer: str) -> bool:
    m = re.fullmatch(r"sort (.+):", prompt)
    given = _numbers(m[1]) if m else None
    got = _numbers(answer)
    if given is None or got is None or len(got) != len(given):
        return False
    return all(x <= y for x, y in zip(got, got[1:])) and sorted(given) == sorted(got)


def _check_reverse(prompt: str, answer: str) -> bool:
    m = re.fullmatch(r"reverse ([a-z](?: [a-z])*):", prompt)
    return bool(m) and answer.split(" ") == m[1].split(" ")[::-1]


def parse_grid(text: str, n: int, blanks_allowed: bool) -> list[int] | None:
    """The cells of an n x n grid written as rows joined by '/', or None if malformed."""
    rows = text.split("/")
    symbols = "123456789"[:n] + ("." if blanks_allowed else "")
    if len(rows) != n or any(len(row) != n or any(ch not in symbols for ch in row) for row in rows):
        return None
    return [0 if ch == "." else int(ch) for row in rows for ch in row]


def _check_sudoku(task: str, prompt: str, answer: str) -> bool:
    n = SUDOKU[task][0]
    m = re.fullmatch(r"sudoku (\S+):", prompt)
    givens = parse_grid(m[1], n, blanks_allowed=True) if m else None
    filled = parse_grid(answer, n, blanks_allowed=False)
    if givens is None or filled is None:
        return False
    if any(g and g != f for g, f in zip(givens, filled)):
        return False
    geo = GEOMETRY[n]
    units: list[set[int]] = [set() for _ in range(3 * n)]
    for cell, digit in enumerate(filled):
        for u in geo.units[cell]:
            units[u].add(digit)
    return all(len(unit) == n for unit in units)


def check(task: str, prompt: str, answer: str) -> bool:
    """Whether answer correctly answers prompt; False (never an exception) for anything malformed."""
    if task == "add":
        return _check_add(prompt, answer)
    if task == "sort":
        return _check_sort(prompt, answer)
    if task == "reverse":
        return _check_reverse(prompt, answer)
    if task in SUDOKU:
        return _check_sudoku(task, prompt, answer)
    raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def has_unique_solution(task: str, prompt: str) -> bool:
    n = SUDOKU[task][0]
    grid = parse_grid(prompt[len("sudoku ") : -1], n, blanks_allowed=True)
    return grid is not None and count_solutions(grid, GEOMETRY[n]) == 1


def _verify(paths: list[str]) -> int:
    """Checks every record of the JSONL files; returns the number of failures."""
    failures = 0
    for path in paths:
        counts: dict[str, int] = {}
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                rec = json.loads(line)
                task, prompt, answer = rec["task"], rec["prompt"], rec["answer"]
                ok = check(task, prompt, answer) and (task not in SUDOKU or has_unique_solution(task, prompt))
                if not ok:
                    failures += 1
                    print(f"{path}:{line_no}: {task} record fails its check: {prompt!r} -> {answer!r}")
                counts[task] = counts.get(task, 0) + 1
        print(f"{path}: {sum(counts.values())} records checked ({', '.join(f'{t} {c}' for t, c in counts.items())})")
    return failures


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "verify":
        sys.exit(__doc__)
    sys.exit(1 if _verify(sys.argv[2:]) else 0)
