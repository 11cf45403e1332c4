"""Runs torch SDPA on one decode shape a few times, for bench/profile.sh to profile its kernel beside
chunktree's (same shapes, same KV bytes). One query token per sequence, KV [batch, kv heads, len, d]
in bf16, random; GQA through enable_gqa as in bench/baselines.py.

  python3 bench/sdpa_once.py BATCH HEADS KV_HEADS LEN [DIM]
"""
import sys

import torch
import torch.nn.functional as F


def main() -> None:
    batch, heads, kv_heads, length = (int(a) for a in sys.argv[1:5])
    dim = int(sys.argv[5]) if len(sys.argv) > 5 else 128
    k = torch.randn((batch, kv_heads, length, dim), device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    q = torch.randn((batch, heads, 1, dim), device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        F.scaled_dot_product_attention(q, k, v, enable_gqa=heads != kv_heads)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
