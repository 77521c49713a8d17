#!/usr/bin/env python3
"""Each kernel's device time from an Nsight Compute CSV, summed by kernel and launch grid (standard library only).

  ncu --clock-control none --metrics gpu__time_duration.sum --csv --page raw --print-units base \
      --log-file kernels.csv DLM bench ...
  python3 tools/bench/kernel_times.py kernels.csv [--per N] [--top K]

`dlm bench --profile` times every op alone with the device waited for around it, so each op carries its
synchronization; Nsight Compute's gpu__time_duration is the kernel's own time on the device. The table
lists kernel name (shortened), grid, block, launches, total microseconds (divided by --per: e.g. the
forwards the run made), mean microseconds a launch and share of the total, costliest first.
"""
import argparse
import csv
import sys
from collections import defaultdict

METRIC = "gpu__time_duration.sum"
TO_MICROSECONDS = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3,
                   "second": 1e6, "s": 1e6}


def short_name(name, width=70):
    """The kernel's name without its return type and parameter list, cut to `width` characters."""
    name = name.removeprefix("void ")
    depth = 0
    for i, c in enumerate(name):  # the parameter list: the first '(' outside template brackets
        depth += (c == "<") - (c == ">")
        if c == "(" and depth == 0:
            name = name[:i]
            break
    return name if len(name) <= width else name[:width - 3] + "..."


def read_kernels(lines):
    """(name, grid, block, microseconds) for each kernel row of ncu's raw CSV page."""
    rows = [row for row in csv.reader(lines) if row]
    header = next((i for i, row in enumerate(rows) if METRIC in row and "Kernel Name" in row), None)
    if header is None:
        raise ValueError(f"no header with 'Kernel Name' and '{METRIC}': not ncu --csv --page raw output")
    columns = rows[header]
    name, grid, block, metric = (columns.index(c) for c in ("Kernel Name", "Grid Size", "Block Size", METRIC))
    body = rows[header + 1:]
    scale = 1e-3  # ncu's base unit for durations is the nanosecond
    if body and body[0][name] == "":  # the units row
        unit = body[0][metric]
        if unit not in TO_MICROSECONDS:
            raise ValueError(f"unknown unit '{unit}' for {METRIC}")
        scale = TO_MICROSECONDS[unit]
        body = body[1:]
    kernels = []
    for row in body:
        if len(row) != len(columns):
            continue  # the program's own output, interleaved
        value = row[metric].replace(",", "")
        kernels.append((row[name], row[grid], row[block], float(value) * scale))
    return kernels


def table(kernels, per=1.0, top=30):
    """Markdown: the kernels summed by (shortened name, grid, block), costliest first."""
    sums = defaultdict(lambda: [0, 0.0])
    for name, grid, block, us in kernels:
        entry = sums[(short_name(name), grid, block)]
        entry[0] += 1
        entry[1] += us
    total = sum(us for _, _, _, us in kernels)
    lines = [f"{len(kernels)} launches, {total / per:,.1f} µs" + (f" per {per:g}" if per != 1 else ""), "",
             "| kernel | grid | block | launches | µs | µs/launch | share |", "|---|---|---|---:|---:|---:|---:|"]
    ranked = sorted(sums.items(), key=lambda item: -item[1][1])
    for (name, grid, block), (count, us) in ranked[:top]:
        lines.append(f"| `{name}` | {grid} | {block} | {count / per:g} | {us / per:,.1f} | {us / count:,.2f} | "
                     f"{100 * us / total:.1f}% |")
    if len(ranked) > top:
        rest = sum(us for _, (_, us) in ranked[top:])
        lines.append(f"| {len(ranked) - top} more | | | | {rest / per:,.1f} | | {100 * rest / total:.1f}% |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="ncu --csv --page raw output (--log-file)")
    parser.add_argument("--per", type=float, default=1.0, help="divide launches and totals by this")
    parser.add_argument("--top", type=int, default=30, help="rows to list; the rest are summed")
    args = parser.parse_args()
    with open(args.csv, newline="") as f:
        try:
            kernels = read_kernels(f)
        except ValueError as error:
            sys.exit(f"{args.csv}: {error}")
    if not kernels:
        sys.exit(f"{args.csv}: no kernel rows")
    print(table(kernels, args.per, args.top))


if __name__ == "__main__":
    main()
