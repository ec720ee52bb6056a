#!/usr/bin/env python3
"""make-tiny-mmproj.py: a tiny random vision projector (CLIP + LLaVA "mlp")

usage: make-tiny-mmproj.py [--out build/models/tiny.mmproj.gguf]
                           [--text-embd N] [--seed N] [--png-b64 FILE]

A GGUF that llama.cpp's mtmd/clip loader (tools/mtmd/clip.cpp) accepts with
"--mmproj": clip.projector_type "mlp", one vision block (the LLaVA graph
stops before the last block, so its weights are loaded but unused), a
16x16 image cut into 8x8 patches, and the projector mm.0/mm.2 whose output
width (--text-embd) must equal the text model's embedding_length
(make-tiny-gguf.py's --embd, 64 by default). Random weights: an image gives
meaningless tokens, but the child starts and counts them as prompt.
--png-b64 FILE also writes a 16x16 RGB PNG, base64-encoded, to send.
"""
import argparse
import random
import base64
import struct
import zlib

ALIGN = 32
T_U32, T_F32, T_BOOL, T_STR, T_ARR = 4, 6, 7, 8, 9
GGML_F32, GGML_F16 = 0, 1


def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    body = gstr(key) + struct.pack("<I", vtype)
    if vtype == T_STR:
        return body + gstr(value)
    if vtype == T_ARR:  # f32 array
        return body + struct.pack("<IQ", T_F32, len(value)) + \
            struct.pack("<%df" % len(value), *value)
    return body + struct.pack({T_U32: "<I", T_F32: "<f", T_BOOL: "<?"}[vtype],
                              value)


def pad(n):
    return (ALIGN - n % ALIGN) % ALIGN


def build(a):
    e, ff, hid = 32, 64, 64   # vision width, its ffn, projector hidden
    img, patch = 16, 8
    n_pos = (img // patch) ** 2
    meta = [
        kv("general.architecture", T_STR, "clip"),
        kv("general.name", T_STR, "lemon tiny random projector"),
        kv("general.file_type", T_U32, 0),
        kv("clip.projector_type", T_STR, "mlp"),
        kv("clip.has_vision_encoder", T_BOOL, True),
        kv("clip.use_gelu", T_BOOL, True),
        kv("clip.vision.image_size", T_U32, img),
        kv("clip.vision.patch_size", T_U32, patch),
        kv("clip.vision.embedding_length", T_U32, e),
        kv("clip.vision.feed_forward_length", T_U32, ff),
        kv("clip.vision.projection_dim", T_U32, a.text_embd),
        kv("clip.vision.attention.head_count", T_U32, 2),
        kv("clip.vision.attention.layer_norm_epsilon", T_F32, 1e-5),
        kv("clip.vision.block_count", T_U32, 1),
        kv("clip.vision.image_mean", T_ARR, [0.5, 0.5, 0.5]),
        kv("clip.vision.image_std", T_ARR, [0.5, 0.5, 0.5]),
    ]
    # (name, ggml dims ne0..., type)
    tensors = [
        ("v.patch_embd.weight", (patch, patch, 3, e), GGML_F16),
        ("v.position_embd.weight", (e, n_pos), GGML_F32),
        ("v.blk.0.attn_out.weight", (e, e), GGML_F32),
        ("v.blk.0.ffn_up.weight", (e, ff), GGML_F32),
        ("v.blk.0.ffn_down.weight", (ff, e), GGML_F32),
        ("mm.0.weight", (e, hid), GGML_F32),
        ("mm.0.bias", (hid,), GGML_F32),
        ("mm.2.weight", (hid, a.text_embd), GGML_F32),
        ("mm.2.bias", (a.text_embd,), GGML_F32),
    ]
    rng = random.Random(a.seed)
    infos, blobs, off = [], [], 0
    for name, dims, ttype in tensors:
        n = 1
        for d in dims:
            n *= d
        vals = [rng.gauss(0.0, 0.08) for _ in range(n)]
        data = struct.pack("<%d%s" % (n, "e" if ttype == GGML_F16 else "f"),
                           *vals)
        infos.append(gstr(name) + struct.pack("<I", len(dims)) +
                     b"".join(struct.pack("<Q", d) for d in dims) +
                     struct.pack("<IQ", ttype, off))
        blobs.append(data + b"\0" * pad(len(data)))
        off += len(blobs[-1])
    head = b"GGUF" + struct.pack("<IQQ", 3, len(infos), len(meta))
    head += b"".join(meta) + b"".join(infos)
    head += b"\0" * pad(len(head))
    return head + b"".join(blobs)


def png16():
    w = h = 16
    raw = b"".join(b"\0" + bytes(v for x in range(w) for v in
                                  ((x * 16) % 256, (y * 16) % 256, 128))
                   for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + \
            struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return b"\x89PNG\r\n\x1a\n" + \
        chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/models/tiny.mmproj.gguf")
    ap.add_argument("--text-embd", type=int, default=64)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--png-b64", help="also write a base64 16x16 PNG here")
    a = ap.parse_args()
    if a.png_b64:
        with open(a.png_b64, "w") as f:
            f.write(base64.b64encode(png16()).decode())
    data = build(a)
    with open(a.out, "wb") as f:
        f.write(data)
    print(a.out)


if __name__ == "__main__":
    main()
