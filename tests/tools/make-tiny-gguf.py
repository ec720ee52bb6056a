#!/usr/bin/env python3
"""Writes a tiny llama-architecture GGUF v3 model for tests and benchmarks.

The weights are seeded random numbers (the output is deterministic for a
given seed), the dimensions are tiny so inference is fast on two cores, and
the tokenizer is a real one: every tokenizer.* entry is copied byte for byte
from one of llama.cpp's models/ggml-vocab-*.gguf files. Standard library only.

usage: make-tiny-gguf.py [--vocab FILE] [--out build/models/tiny.gguf]
                         [--seed N] [--embd N] [--layers N] [--heads N]
                         [--ctx N] [--chat-template FILE]

--chat-template puts FILE's text in tokenizer.chat_template (replacing the
vocabulary file's, if any): e.g. llama.cpp's
models/templates/Qwen-Qwen2.5-7B-Instruct.jinja with --vocab
models/ggml-vocab-qwen2.gguf gives a model whose template takes tools.
"""
import argparse
import glob
import os
import random
import struct
import sys

GGUF_MAGIC = b"GGUF"
ALIGN = 32

# GGUF value types
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, \
    T_U64, T_I64, T_F64 = range(13)
SCALAR = {T_U8: 1, T_I8: 1, T_U16: 2, T_I16: 2, T_U32: 4, T_I32: 4,
          T_F32: 4, T_BOOL: 1, T_U64: 8, T_I64: 8, T_F64: 8}
# ggml tensor types
GGML_F32, GGML_F16 = 0, 1


class Reader:
    """bounds-checked little-endian reader over a bytes object"""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("truncated GGUF at offset %d" % self.pos)
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def string(self):
        return self.take(self.u64()).decode("utf-8")

    def skip_value(self, vtype):
        if vtype in SCALAR:
            self.take(SCALAR[vtype])
        elif vtype == T_STR:
            self.take(self.u64())
        elif vtype == T_ARR:
            etype = self.u32()
            count = self.u64()
            if etype in SCALAR:
                self.take(SCALAR[etype] * count)
            else:
                for _ in range(count):
                    self.skip_value(etype)
        else:
            raise ValueError("unknown GGUF value type %d" % vtype)


def read_tokenizer_kv(path):
    """returns [(key, raw bytes of the whole KV entry)] for tokenizer.*"""
    with open(path, "rb") as f:
        r = Reader(f.read())
    if r.take(4) != GGUF_MAGIC:
        raise ValueError("%s: not a GGUF file" % path)
    version = r.u32()
    if version not in (2, 3):
        raise ValueError("%s: unsupported GGUF version %d" % (path, version))
    r.u64()  # tensor count
    n_kv = r.u64()
    out = []
    for _ in range(n_kv):
        start = r.pos
        key = r.string()
        vtype = r.u32()
        r.skip_value(vtype)
        if key.startswith("tokenizer."):
            out.append((key, r.data[start:r.pos]))
    if not any(k == "tokenizer.ggml.tokens" for k, _ in out):
        raise ValueError("%s: no tokenizer.ggml.tokens" % path)
    return out


def gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    body = gguf_str(key) + struct.pack("<I", vtype)
    if vtype == T_STR:
        return body + gguf_str(value)
    fmt = {T_U32: "<I", T_F32: "<f", T_BOOL: "<?"}[vtype]
    return body + struct.pack(fmt, value)


def token_count(raw_tokens_kv):
    r = Reader(raw_tokens_kv)
    r.string()
    r.u32()  # array type
    r.u32()  # element type
    return r.u64()


def find_vocab():
    pats = [os.path.expanduser("~/.cache/lemon-build/*/src/models/"
                               "ggml-vocab-llama-spm.gguf")]
    for p in pats:
        hits = sorted(glob.glob(p))
        if hits:
            return hits[-1]
    return None


def tensors_for(a, n_vocab):
    """(name, ggml dims ne0..., type) in llama.cpp's expected shapes"""
    e, ff = a.embd, a.embd * 2
    kv_dim = e  # no grouped-query attention: head_count_kv == head_count
    t = [("token_embd.weight", (e, n_vocab), GGML_F16),
         ("output_norm.weight", (e,), GGML_F32)]
    for i in range(a.layers):
        p = "blk.%d." % i
        t += [(p + "attn_norm.weight", (e,), GGML_F32),
              (p + "attn_q.weight", (e, e), GGML_F32),
              (p + "attn_k.weight", (e, kv_dim), GGML_F32),
              (p + "attn_v.weight", (e, kv_dim), GGML_F32),
              (p + "attn_output.weight", (e, e), GGML_F32),
              (p + "ffn_norm.weight", (e,), GGML_F32),
              (p + "ffn_gate.weight", (e, ff), GGML_F32),
              (p + "ffn_up.weight", (e, ff), GGML_F32),
              (p + "ffn_down.weight", (ff, e), GGML_F32)]
    return t


def tensor_bytes(rng, name, dims, ttype):
    n = 1
    for d in dims:
        n *= d
    if name.endswith("norm.weight"):
        vals = [1.0] * n
    else:
        vals = [rng.gauss(0.0, 0.08) for _ in range(n)]
    return struct.pack("<%d%s" % (n, "e" if ttype == GGML_F16 else "f"),
                       *vals)


def pad(n):
    return (ALIGN - n % ALIGN) % ALIGN


def build(a, vocab_path):
    tok = read_tokenizer_kv(vocab_path)
    n_vocab = token_count(dict(tok)["tokenizer.ggml.tokens"])
    meta = [kv("general.architecture", T_STR, "llama"),
            kv("general.name", T_STR, "lemon-tiny"),
            kv("general.alignment", T_U32, ALIGN),
            kv("llama.context_length", T_U32, a.ctx),
            kv("llama.embedding_length", T_U32, a.embd),
            kv("llama.block_count", T_U32, a.layers),
            kv("llama.feed_forward_length", T_U32, a.embd * 2),
            kv("llama.attention.head_count", T_U32, a.heads),
            kv("llama.attention.head_count_kv", T_U32, a.heads),
            kv("llama.attention.layer_norm_rms_epsilon", T_F32, 1e-5),
            kv("llama.rope.dimension_count", T_U32, a.embd // a.heads),
            kv("llama.vocab_size", T_U32, n_vocab)]
    if a.chat_template:
        with open(a.chat_template, encoding="utf-8") as f:
            tok = [(k, r) for k, r in tok if k != "tokenizer.chat_template"]
            tok.append(("tokenizer.chat_template",
                        kv("tokenizer.chat_template", T_STR, f.read())))
    meta += [raw for _, raw in tok]
    rng = random.Random(a.seed)
    infos, blobs, off = [], [], 0
    for name, dims, ttype in tensors_for(a, n_vocab):
        data = tensor_bytes(rng, name, dims, ttype)
        infos.append(gguf_str(name) + struct.pack("<I", len(dims)) +
                     b"".join(struct.pack("<Q", d) for d in dims) +
                     struct.pack("<IQ", ttype, off))
        blobs.append(data + b"\0" * pad(len(data)))
        off += len(blobs[-1])
    head = GGUF_MAGIC + struct.pack("<IQQ", 3, len(infos), len(meta))
    head += b"".join(meta) + b"".join(infos)
    head += b"\0" * pad(len(head))
    return head + b"".join(blobs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", help="a llama.cpp models/ggml-vocab-*.gguf")
    ap.add_argument("--out", default="build/models/tiny.gguf")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--embd", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chat-template",
                    help="a Jinja chat template file for tokenizer.chat_template")
    a = ap.parse_args()
    if a.embd <= 0 or a.heads <= 0 or a.embd % a.heads or a.layers <= 0:
        sys.exit("make-tiny-gguf: --embd must be a positive multiple of "
                 "--heads and --layers positive")
    vocab = a.vocab or find_vocab()
    if not vocab:
        sys.exit("make-tiny-gguf: no ggml-vocab-llama-spm.gguf found under "
                 "~/.cache/lemon-build/*/src/models; pass --vocab FILE")
    data = build(a, vocab)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, a.out)
    print(a.out)


if __name__ == "__main__":
    main()
