"""examples/tensor_parallel_decode.py under torchrun: ranks that each hold a slice of the heads,
their plans compared, their output heads gathered and checked against one process with all heads
(the example's own checks; it exits 1 if one fails)."""

import pathlib
import socket
import subprocess
import sys

import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "tensor_parallel_decode.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(ranks: int, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks), "--master-addr", "127.0.0.1",
               "--master-port", str(_free_port()), str(EXAMPLE), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=240)


def test_two_ranks_on_the_cpu_with_gloo():
    torch = pytest.importorskip("torch")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("needs torch.distributed with gloo")
    # A prompt that ends inside a page, GQA 4 with 2 kv heads per rank.
    result = _torchrun(2, "--device", "cpu", "--samples", "4", "--prompt", "70", "--steps", "3", "--layers", "2", "--q-heads", "16",
                       "--kv-heads", "4", "--head-dim", "64")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plans identical on every rank at every step: yes" in result.stdout
    assert "bitwise equal" in result.stdout
    assert "all checks hold" in result.stdout


def test_the_example_refuses_heads_that_do_not_split():
    pytest.importorskip("torch")
    result = _torchrun(2, "--device", "cpu", "--kv-heads", "3", "--q-heads", "6")
    assert result.returncode != 0
    assert "--kv-heads (3) must be a multiple of the ranks (2)" in result.stderr


@pytest.mark.parametrize("ranks", [1, 2])
def test_ranks_on_gpus_with_nccl(ranks):
    torch = pytest.importorskip("torch")
    import chunktree
    if not chunktree.hopper_visible() or torch.cuda.device_count() < ranks:
        pytest.skip(f"needs {ranks} Hopper GPU(s)")
    result = _torchrun(ranks, "--device", "cuda", "--samples", "8", "--prompt", "300", "--steps", "3", "--kv-heads", "8", "--q-heads", "32")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plans identical on every rank at every step: yes" in result.stdout
