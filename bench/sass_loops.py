"""Lists the loops of one kernel's SASS that hold tensor-core instructions: for each backward branch
whose body (branch target to branch) holds an HMMA, the body's size in instructions and its counts
of shared-memory matrix loads (LDSM), barriers (BAR) and async copies (LDGSTS). Used to see what a
change put inside a kernel's stage loop (docs/KERNEL_NOTES.md, experiments 93 to 93c).

    cuobjdump -sass -fun KERNEL_SYMBOL BINARY > kernel.sass
    python3 bench/sass_loops.py kernel.sass
"""

import re
import sys

COUNTED = ("HMMA", "LDSM", "BAR", "LDGSTS")


def instructions(path):
    found = []
    for line in open(path):
        match = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if match:
            found.append((int(match.group(1), 16), match.group(2)))
    return found


def main(path):
    code = instructions(path)
    index = {address: i for i, (address, _) in enumerate(code)}
    print(f"{path}: {len(code)} instructions, {sum('STL' in text or 'LDL' in text for _, text in code)} local loads and stores")
    for i, (address, text) in enumerate(code):
        branch = re.search(r"BRA.*?0x([0-9a-f]+)", text)
        if not branch:
            continue
        target = int(branch.group(1), 16)
        if target >= address or target not in index:
            continue
        body = [text for _, text in code[index[target]:i + 1]]
        counts = {name: sum(name in line for line in body) for name in COUNTED}
        if counts["HMMA"]:
            print(f"  loop {target:x}-{address:x}: {len(body)} instructions, " + ", ".join(f"{name} {n}" for name, n in counts.items()))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
