#!/usr/bin/env python3
"""Writes a llama-architecture GGUF v3 model at a real model's shapes.

For benchmarks on real accelerators: the weights are Q4_0 blocks of random
nibbles with one fixed fp16 scale (0.004, small enough that activations stay
finite through 80 layers), so the file has the size, tensor shapes and
memory traffic of the real model without its knowledge. The tokenizer is a
real one (llama-spm, 32000 tokens) copied from llama.cpp's
models/ggml-vocab-llama-spm.gguf by make-tiny-gguf.py's reader. The data is
written in chunks as it is generated: a 70B shape (36 GiB) never sits in
memory. Standard library only. Never commit what it writes.

shapes: 7b  Llama-2 7B   (n_embd 4096, 32 layers, 32 heads, ffn 11008)
        70b Llama-2 70B  (n_embd 8192, 80 layers, 64 heads, 8 KV heads, ffn 28672)
        custom           (--embd/--layers/--heads/--heads-kv/--ffn)

usage: make-shape-gguf.py --shape 7b|70b|custom --out FILE [--vocab FILE]
                          [--seed N] [--ctx N] [--embd N] [--layers N]
                          [--heads N] [--heads-kv N] [--ffn N]
"""
import argparse
import importlib.util
import os
import random
import struct
import sys

SHAPES = {
    "7b": dict(embd=4096, layers=32, heads=32, heads_kv=32, ffn=11008),
    "70b": dict(embd=8192, layers=80, heads=64, heads_kv=8, ffn=28672),
}
GGML_F32, GGML_Q4_0 = 0, 2
QK4_0 = 32          # weights per Q4_0 block
Q4_0_BLOCK = 18     # fp16 scale + 16 bytes of nibbles
SCALE = struct.pack("<e", 0.004)
CHUNK_BLOCKS = 1 << 20  # 18 MiB per write


def load_tiny():
    """make-tiny-gguf.py's GGUF reader and KV writers (its name has dashes)"""
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "make_tiny_gguf", os.path.join(here, "make-tiny-gguf.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tensors_for(s, n_vocab):
    """(name, ggml dims ne0..., type) in llama.cpp's expected shapes"""
    e, ff = s["embd"], s["ffn"]
    kv_dim = e // s["heads"] * s["heads_kv"]
    t = [("token_embd.weight", (e, n_vocab), GGML_Q4_0),
         ("output_norm.weight", (e,), GGML_F32),
         ("output.weight", (e, n_vocab), GGML_Q4_0)]
    for i in range(s["layers"]):
        p = "blk.%d." % i
        t += [(p + "attn_norm.weight", (e,), GGML_F32),
              (p + "attn_q.weight", (e, e), GGML_Q4_0),
              (p + "attn_k.weight", (e, kv_dim), GGML_Q4_0),
              (p + "attn_v.weight", (e, kv_dim), GGML_Q4_0),
              (p + "attn_output.weight", (e, e), GGML_Q4_0),
              (p + "ffn_norm.weight", (e,), GGML_F32),
              (p + "ffn_gate.weight", (e, ff), GGML_Q4_0),
              (p + "ffn_up.weight", (e, ff), GGML_Q4_0),
              (p + "ffn_down.weight", (ff, e), GGML_Q4_0)]
    return t


def nbytes(dims, ttype):
    n = 1
    for d in dims:
        n *= d
    if ttype == GGML_Q4_0:
        return n // QK4_0 * Q4_0_BLOCK
    return n * 4


def write_q4_0(f, rng, nblocks):
    while nblocks > 0:
        nb = min(nblocks, CHUNK_BLOCKS)
        buf = bytearray(rng.randbytes(nb * Q4_0_BLOCK))
        # extended-slice assignment puts the scale in every block at C speed
        buf[0::Q4_0_BLOCK] = SCALE[0:1] * nb
        buf[1::Q4_0_BLOCK] = SCALE[1:2] * nb
        f.write(buf)
        nblocks -= nb


def write_model(a, s, vocab_path):
    tiny = load_tiny()
    tok = tiny.read_tokenizer_kv(vocab_path)
    n_vocab = tiny.token_count(dict(tok)["tokenizer.ggml.tokens"])
    kv, T_STR, T_U32, T_F32 = tiny.kv, tiny.T_STR, tiny.T_U32, tiny.T_F32
    meta = [kv("general.architecture", T_STR, "llama"),
            kv("general.name", T_STR, "lemon-shape-" + a.shape),
            kv("general.alignment", T_U32, tiny.ALIGN),
            kv("general.file_type", T_U32, 2),  # MOSTLY_Q4_0
            kv("llama.context_length", T_U32, a.ctx),
            kv("llama.embedding_length", T_U32, s["embd"]),
            kv("llama.block_count", T_U32, s["layers"]),
            kv("llama.feed_forward_length", T_U32, s["ffn"]),
            kv("llama.attention.head_count", T_U32, s["heads"]),
            kv("llama.attention.head_count_kv", T_U32, s["heads_kv"]),
            kv("llama.attention.layer_norm_rms_epsilon", T_F32, 1e-5),
            kv("llama.rope.dimension_count", T_U32, s["embd"] // s["heads"]),
            kv("llama.vocab_size", T_U32, n_vocab)]
    meta += [raw for _, raw in tok]
    tensors = tensors_for(s, n_vocab)
    infos, off = [], 0
    for name, dims, ttype in tensors:
        infos.append(tiny.gguf_str(name) + struct.pack("<I", len(dims)) +
                     b"".join(struct.pack("<Q", d) for d in dims) +
                     struct.pack("<IQ", ttype, off))
        n = nbytes(dims, ttype)
        off += n + tiny.pad(n)
    head = tiny.GGUF_MAGIC + struct.pack("<IQQ", 3, len(infos), len(meta))
    head += b"".join(meta) + b"".join(infos)
    head += b"\0" * tiny.pad(len(head))
    rng = random.Random(a.seed)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head)
        for name, dims, ttype in tensors:
            n = nbytes(dims, ttype)
            if ttype == GGML_Q4_0:
                write_q4_0(f, rng, n // Q4_0_BLOCK)
            else:  # norm weights: ones
                f.write(struct.pack("<f", 1.0) * (n // 4))
            f.write(b"\0" * tiny.pad(n))
    os.replace(tmp, a.out)
    return len(head) + off


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", required=True, choices=["7b", "70b", "custom"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", help="a llama.cpp models/ggml-vocab-*.gguf")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--ctx", type=int, default=4096)
    for k in ("embd", "layers", "heads", "heads-kv", "ffn"):
        ap.add_argument("--" + k, type=int)
    a = ap.parse_args()
    if a.shape == "custom":
        s = dict(embd=a.embd, layers=a.layers, heads=a.heads,
                 heads_kv=a.heads_kv or a.heads, ffn=a.ffn)
        if None in s.values():
            sys.exit("make-shape-gguf: --shape custom needs --embd, "
                     "--layers, --heads and --ffn")
    else:
        s = dict(SHAPES[a.shape])
    e, h, hk = s["embd"], s["heads"], s["heads_kv"]
    if (min(s.values()) <= 0 or e % h or h % hk or e % QK4_0 or
            s["ffn"] % QK4_0 or a.ctx <= 0):
        sys.exit("make-shape-gguf: --embd must be a multiple of --heads and "
                 "of 32, --heads a multiple of --heads-kv, --ffn a multiple "
                 "of 32, all positive")
    vocab = a.vocab or load_tiny().find_vocab()
    if not vocab:
        sys.exit("make-shape-gguf: no ggml-vocab-llama-spm.gguf found under "
                 "~/.cache/lemon-build/*/src/models; pass --vocab FILE")
    size = write_model(a, s, vocab)
    print("%s %d" % (a.out, size))


if __name__ == "__main__":
    main()
