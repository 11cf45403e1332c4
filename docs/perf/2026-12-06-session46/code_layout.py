"""Session 46: where the wgmma producer's code blocks lie in the compiled kernel (bf16, d 128), from
a line-info disassembly: compile src/kernels/wgmma_states.cu as the build does (`ninja -t commands`)
with `-lineinfo -o X.o`, then `cuobjdump -xelf all X.o` and `nvdisasm --print-line-info X.cubin > DUMP`.
Prints, from the producer's `setmaxnreg` on, the instruction index at which each tagged block starts
(the tags are source lines of main at 909a0cd: move them with the code). Blocks of one path that lie
far apart are jumps the producer takes to unfetched instruction lines (sass_runs.py measures them).
Usage: python3 code_layout.py DUMP"""
import re
import sys

TAGS = {("run_window.cuh", 110): "hold", ("run_window.cuh", 61): "lead-branch", ("run_window.cuh", 99): "window-load",
        ("wgmma_states.cu", 178): "lead-TMA", ("wgmma_states.cu", 182): "lead-cpasync", ("wgmma_states.cu", 203): "part-boxes",
        ("wgmma_states.cu", 207): "part-cpasync", ("stage_copy.cuh", 74): "zero-test", ("stage_copy.cuh", 80): "zero-body"}


def main():
    lines = open(sys.argv[1]).read().split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(".section") and ".text." in line and "bfloat16Li128" in line)
    source, code = None, []
    for line in lines[start + 1:]:
        if line.strip().startswith(".section"):
            break
        m = re.search(r'//## File "([^"]+)", line (\d+)', line)
        if m:
            source = (m.group(1).split("/")[-1], int(m.group(2)))
            continue
        m = re.search(r"/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if m:
            code.append((int(m.group(1), 16) // 16, source, m.group(2).strip()))
    print(f"{len(code)} instructions")
    first = next(i for i, (_, _, text) in enumerate(code) if "USETMAXREG.DEALLOC" in text)
    last, marks = None, []
    for index, source, _ in code[first:]:
        tag = TAGS.get(source)
        if tag and tag != last:
            marks.append(f"{index}:{tag}")
            last = tag
    print(" ".join(marks))


if __name__ == "__main__":
    main()
