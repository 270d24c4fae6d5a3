"""Reading bench/frame_cost.py's callgrind dumps: Ir per phase, exclusive Ir per C function grouped
by library, allocator calls, and the bridge-against-relay report."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path
from typing import Any

_TOTALS = re.compile(rb"^totals:\s*(\d+)", re.MULTILINE)
_FN_LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*?)(?:\s+\[(.*)\])?$")

# Where a C function's instructions go, by its object file (or name): the groups of the breakdown.
_GROUPS = (
    ("the DSP: numpy + BLAS", lambda fn, obj: "numpy" in obj),
    ("the DSP: compiled (_polyphase.c)", lambda fn, obj: "_polyphase" in obj),
    ("base64 (binascii)", lambda fn, obj: "binascii_" in fn),
    ("orjson", lambda fn, obj: "orjson" in obj),
    ("std json (_json)", lambda fn, obj: "_json" in obj or "/_json.c" in fn),
    ("websockets C speedups (masking)", lambda fn, obj: "websockets" in obj),
    ("uvloop", lambda fn, obj: "uvloop" in obj),
    ("asyncio C (_asyncio)", lambda fn, obj: "_asynciomodule" in fn or "_asyncio." in obj),
    ("libc (memcpy, malloc, …)", lambda fn, obj: "libc.so" in obj or "libm.so" in obj),
    ("CPython: eval loop", lambda fn, obj: "_PyEval_EvalFrameDefault" in fn),
    ("CPython: memory (obmalloc, gc)", lambda fn, obj: "obmalloc.c" in fn or "gcmodule.c" in fn),
    ("CPython: everything else", lambda fn, obj: True),
)


def dump_totals(path: Path) -> int:
    match = _TOTALS.search(path.read_bytes())
    return int(match.group(1)) if match else 0


def exclusive_costs(path: Path) -> dict[tuple[str, str], int]:
    """Exclusive Ir per (file:function, object) of one dump, from callgrind_annotate. A dump taken
    mid-run charges each function still on the stack (main, the event loop, …) with everything under
    it; those entries (≥ 95 % of the dump) are left out."""
    total = dump_totals(path)
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--auto=no", str(path)], capture_output=True, text=True, check=True
    ).stdout
    out: dict[tuple[str, str], int] = {}
    for line in text.splitlines():
        match = _FN_LINE.match(line)
        if not match or match.group(2) == "PROGRAM TOTALS":
            continue
        ir = int(match.group(1).replace(",", ""))
        if ir >= 0.95 * total:
            continue
        key = (match.group(2), match.group(3) or "")
        out[key] = out.get(key, 0) + ir
    return out


_ALLOCATORS = {
    "_PyObject_Malloc": "python",
    "_PyObject_Calloc": "python",
    "_PyObject_Realloc": "python",
    "malloc": "libc",
    "calloc": "libc",
    "realloc": "libc",
}


def allocation_calls(path: Path) -> dict[str, int]:
    """Calls into CPython's object allocator and libc's malloc in one dump (from its `calls=` lines):
    the allocations a phase made, freed or not."""
    names: dict[str, str] = {}
    counts = {"python": 0, "libc": 0}
    callee = None
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.startswith(("fn=", "cfn=")):
                ident, _, name = line.partition(")")
                ident = ident.split("(", 1)[-1]
                if name.strip():
                    names[ident] = name.strip()
                callee = ident if line.startswith("cfn=") else None
            elif line.startswith("calls=") and callee is not None:
                kind = _ALLOCATORS.get(names.get(callee, "").split("'", 1)[0])
                if kind:
                    counts[kind] += int(line[6:].split()[0])
                callee = None
    return counts


def grouped(costs: dict[tuple[str, str], int]) -> dict[str, int]:
    out = {name: 0 for name, _ in _GROUPS}
    for (fn, obj), ir in costs.items():
        out[next(name for name, match in _GROUPS if match(fn, obj))] += ir
    return out


def short(fn: str) -> str:
    """'…/Objects/dictobject.c:_Py_dict_lookup' → 'dictobject.c:_Py_dict_lookup'."""
    path, _, name = fn.rpartition(":")
    return f"{path.rsplit('/', 1)[-1]}:{name}" if path else fn


def report(rows: dict[str, dict[str, Any]], meta: dict[str, Any], args: argparse.Namespace) -> None:
    table = []
    print(
        f"{'phase':<14} {'units':>6} {'Ir per unit':>12}   (unit: a 20 ms caller frame up; a 100 ms model delta down)"
    )
    for label, row in rows.items():
        per = row["ir"] / row["units"]
        row["per_unit"] = per
        table.append({"phase": label, "units": row["units"], "ir_per_unit": round(per)})
        allocs = allocation_calls(row["dump"])
        row["allocs"] = {k: v / row["units"] for k, v in allocs.items()}
        table[-1]["allocations_per_unit"] = row["allocs"]
        print(
            f"{label:<14} {row['units']:>6} {per:>12,.0f}   allocations per unit: "
            f"{row['allocs']['python']:.1f} CPython objects, {row['allocs']['libc']:.1f} malloc"
        )
    for way in ("up", "down"):
        bridge, lean = rows.get(f"bridge {way}"), rows.get(f"relay-orjson {way}")
        if bridge and lean:
            print(f"bridge ÷ relay-orjson {way}: {bridge['per_unit'] / lean['per_unit']:.2f}×")
    for way in ("up", "down"):
        bridge, relay = rows.get(f"bridge {way}"), rows.get(f"relay {way}")
        if bridge and relay:
            print(
                f"bridge ÷ relay {way}: {bridge['per_unit'] / relay['per_unit']:.2f}×  "
                f"(excess {bridge['per_unit'] - relay['per_unit']:,.0f} Ir per unit)"
            )
            b, r = exclusive_costs(bridge["dump"]), exclusive_costs(relay["dump"])
            bu, ru = bridge["units"], relay["units"]
            gb, gr = grouped(b), grouped(r)
            print(f"  {'where (C level)':<36} {'bridge':>10} {'relay':>10} {'excess':>10}   Ir per unit")
            for name in gb:
                print(
                    f"  {name:<36} {gb[name] / bu:>10,.0f} {gr[name] / ru:>10,.0f} {gb[name] / bu - gr[name] / ru:>10,.0f}"
                )
            if args.top:
                excess = {key: b.get(key, 0) / bu - r.get(key, 0) / ru for key in set(b) | set(r)}
                print(f"  top {args.top} C functions by excess Ir per unit (bridge, relay):")
                for key, ir in sorted(excess.items(), key=lambda kv: -abs(kv[1]))[: args.top]:
                    print(
                        f"    {ir:>10,.0f}  {short(key[0])[:80]}  ({b.get(key, 0) / bu:,.0f}, {r.get(key, 0) / ru:,.0f})"
                    )
    if args.json:
        print(json.dumps(table))
