"""What the innermost loop of each micro-kernel keeps in registers, from objdump -d.

    python3 wheels/inner_loops.py OBJDUMP_OUTPUT [SUFFIX]

For every kernel function (dc3_*, ending in SUFFIX, default "_neon"), the shortest
backward branch whose body holds multiply-adds is its inner loop; the table gives
that loop's multiply-adds (fmla), loads and stores.  Stores in an inner loop are
spilled sums (the kernels write their tile only after the loop).  Exits non-zero when
a kernel has no such loop, or no kernel is found.
"""

import re
import sys

LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
FUNCTION = re.compile(r"^[0-9a-f]+ <(dc3_\w+)>:$")
BRANCH = re.compile(r"^(b\.\w+|b|cbnz|cbz|tbnz|tbz)$")


def functions(text, suffix):
    name, body = None, []
    for line in text.splitlines():
        start = FUNCTION.match(line)
        if start:
            if name:
                yield name, body
            name, body = (start.group(1) if start.group(1).endswith(suffix) else None), []
        elif name and (match := LINE.match(line)):
            body.append((int(match.group(1), 16), match.group(2), match.group(3)))
    if name:
        yield name, body


def inner_loop(body):
    best = None
    for address, op, operands in body:
        target = re.search(r"\b([0-9a-f]+) <", operands)
        if BRANCH.match(op) and target and int(target.group(1), 16) < address:
            ops = [o for a, o, _ in body if int(target.group(1), 16) <= a <= address]
            fmla = sum(o.startswith("fml") for o in ops)
            if fmla and (best is None or len(ops) < len(best)):
                best = ops
    return best


def main(path, suffix="_neon"):
    failed = False
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    found = 0
    print(f"{'kernel':34s} {'fmla':>5s} {'loads':>6s} {'stores':>7s} {'fmla/load':>10s}")
    for name, body in functions(text, suffix):
        ops = inner_loop(body)
        found += 1
        if ops is None:
            print(f"{name:34s} no inner loop with multiply-adds")
            failed = True
            continue
        fmla = sum(o.startswith("fml") for o in ops)
        loads = sum(o.startswith("ld") for o in ops)
        stores = sum(o.startswith("st") for o in ops)
        print(f"{name:34s} {fmla:5d} {loads:6d} {stores:7d} {fmla / max(loads, 1):10.2f}")
    return 1 if failed or not found else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
