#!/usr/bin/env python3
"""Writes a tiny GGUF whose CONSTRUCTED (not random) weights call a tool.

For the tests of tool calls through lemon and the real llama-server: the
random tiny models never emit a call, so this one is built to. It is a
llama-architecture model with the Qwen2 vocabulary (every tokenizer.* entry
copied from llama.cpp's models/ggml-vocab-qwen2.gguf, plus Qwen2.5's added
tokens <tool_call> 151657, </tool_call> 151658, <tool_response> 151665 and
</tool_response> 151666 in place of padding, and <|im_end|> as EOS) and
llama.cpp's models/templates/Qwen-Qwen2.5-7B-Instruct.jinja, which the
server's template analysis (common/chat-auto-parser*.cpp) reads as a JSON
tool format: chat format peg-native, a lazy grammar triggered by the text
"<tool_call>\n" (strict from the first token under tool_choice "required").

How the weights decide (one layer, one attention head, FFN all zero):
- every token embedding is a constant "bias" component plus one component
  naming the token (its own slot for the few tokens below, a shared one
  for all others), so with the FFN at zero the residual carries the
  current token and the output layer is a bigram table: each token of the
  wanted answer scores its successor highest;
- the attention head looks for two markers in the whole context, the
  <tool_response> token (a tool result was rendered) and the token
  "Paris" without a leading space (the argument of a replayed call
  {"city": "Paris"}; a user's " Paris" is another token, but a message
  that starts with the word would count): the query is
  constant, only marker tokens have a key (in the slowest rotary pair, so
  the score hardly moves with distance), and their values write the
  fraction of markers of each kind into two residual components;
- no marker: after the prompt's final newline <tool_call> wins, then a
  double newline (so the trigger's text is complete and the single
  newline stays unique to the prompt's end), the lazy grammar fires and
  the bigram table writes {"name":"get_weather","arguments":{"city":"Paris"}}
  (where the grammar fixes a token the table's choice is simply the best
  allowed one); without tools (no grammar) the same text comes once and
  the answer ends;
- a tool result and the replayed call: "It is sunny.";
  a tool result without the call (a client or lemon dropped the assistant's
  tool_calls): "Unknown call."; the call without its result:
  "Missing result.".
The margins are large (tens of logits), so any sampler settings give the
same text. Standard library only.

usage: make-toolcall-gguf.py [--out FILE] [--vocab ggml-vocab-qwen2.gguf]
                             [--template Qwen-Qwen2.5-7B-Instruct.jinja]
"""
import argparse
import glob
import importlib.util
import os
import struct
import sys

GGML_F32, GGML_F16 = 0, 1
EMBD = 64      # residual width = the one head's width
FFN = 32
CTX = 4096
ADDED = {151657: "<tool_call>", 151658: "</tool_call>",
         151665: "<tool_response>", 151666: "</tool_response>"}
TOKEN_USER_DEFINED = 4  # how convert_hf_to_gguf.py stores non-special added tokens
IM_END = 151645

# residual components
D_BIAS, D_RESULT, D_CALL, D_OTHER, D_SLOT0 = 0, 1, 2, 3, 4
# head components: values of the two markers, and the slowest rotary pair
H_RESULT, H_CALL, H_ROPE = 0, 1, EMBD - 2
LINK = 60.0   # a bigram link: successor's logit (before the norm's scale)
SCORE = 24.0  # attention score of a marker; e^24 outweighs any prompt

# the answers, as token texts of the Qwen2 vocabulary (Ġ is a space, Ċ a newline)
CALL = ["Ċ", "<tool_call>", "ĊĊ", '{"', "name", '":"', "get", "_weather", '","',
        "arguments", '":{"', "city", '":"', "Paris", '"}}Ċ', "</tool_call>",
        "<|im_end|>"]
ANSWERS = {  # first token: (marker weights (result, call), rest of the answer)
    "It": ((24.0, 24.0), ["Ġis", "Ġsunny", ".", "<|im_end|>"]),
    "Unknown": ((36.0, 0.0), ["Ġcall", ".", "<|im_end|>"]),
    "Missing": ((0.0, 36.0), ["Ġresult", ".", "<|im_end|>"]),
}


def load_tiny():
    """make-tiny-gguf.py's GGUF reader and KV writers (its name has dashes)"""
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "make_tiny_gguf", os.path.join(here, "make-tiny-gguf.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def find_src(rel):
    hits = sorted(glob.glob(os.path.expanduser("~/.cache/lemon-build/*/src/" + rel)))
    return hits[-1] if hits else None


def read_array(tiny, raw):
    """(key, element type, values) of a KV entry holding an array"""
    r = tiny.Reader(raw)
    key = r.string()
    r.u32()
    etype = r.u32()
    n = r.u64()
    if etype == tiny.T_STR:
        return key, etype, [r.string() for _ in range(n)]
    return key, etype, list(struct.unpack("<%di" % n, r.take(4 * n)))


def array_kv(tiny, key, etype, vals):
    body = tiny.gguf_str(key) + struct.pack("<IIQ", tiny.T_ARR, etype, len(vals))
    if etype == tiny.T_STR:
        return body + b"".join(tiny.gguf_str(v) for v in vals)
    return body + struct.pack("<%di" % len(vals), *vals)


def tokenizer(tiny, vocab, template):
    """the vocabulary's tokenizer KVs with the added tokens and template"""
    out, tokens = [], None
    for key, raw in tiny.read_tokenizer_kv(vocab):
        if key == "tokenizer.ggml.tokens":
            _, et, tokens = read_array(tiny, raw)
            for i, t in ADDED.items():
                if not tokens[i].startswith("[PAD"):
                    sys.exit("make-toolcall-gguf: %s: token %d is %r, not padding"
                             % (vocab, i, tokens[i]))
                tokens[i] = t
            raw = array_kv(tiny, key, et, tokens)
        elif key == "tokenizer.ggml.token_type":
            _, et, types = read_array(tiny, raw)
            for i in ADDED:
                types[i] = TOKEN_USER_DEFINED
            raw = array_kv(tiny, key, et, types)
        elif key in ("tokenizer.chat_template", "tokenizer.ggml.eos_token_id"):
            continue
        out.append(raw)
    out.append(tiny.kv("tokenizer.ggml.eos_token_id", tiny.T_U32, IM_END))
    with open(template, encoding="utf-8") as f:
        out.append(tiny.kv("tokenizer.chat_template", tiny.T_STR, f.read()))
    return out, tokens


def links():
    """bigram table {token text: [(successor text, logit)]}, best first"""
    t = {}
    for a, b in zip(CALL, CALL[1:]):
        t.setdefault(a, [])
        if b not in [s for s, _ in t[a]]:
            t[a].append((b, None))
    for first, (_, rest) in ANSWERS.items():
        for a, b in zip([first] + rest, rest):
            if b not in [s for s, _ in t.setdefault(a, [])]:
                t[a].append((b, None))
    # where one token has several successors the grammar chooses; the order
    # gives the best allowed one: the argument value after ":" before the
    # tool name (the grammar only allows the name there, and "Paris" in
    # the free string). The newline that ends the prompt is the only
    # single newline of a call, so without tools (no grammar) the same
    # text is written once and ends instead of repeating <tool_call>
    t['":"'] = [("Paris", LINK), ("get", LINK - 6.0)]
    return {a: [(b, LINK if w is None else w) for b, w in s] for a, s in t.items()}


def tensors(tokens):
    """(name, dims, float list or (row bytes, count)) of every tensor"""
    ids = {t: i for i, t in enumerate(tokens)}
    n_vocab = len(tokens)
    table = links()
    names = set(table) | {b for s in table.values() for b, _ in s} | set(ANSWERS)
    names |= {"<tool_response>"}
    slot = {}
    for n in sorted(names, key=lambda n: ids[n]):
        if n not in ids:
            sys.exit("make-toolcall-gguf: %r is not in the vocabulary" % n)
        slot[n] = D_SLOT0 + len(slot)
    if D_SLOT0 + len(slot) > EMBD:
        sys.exit("make-toolcall-gguf: too many tokens for %d components" % EMBD)

    def vec(comps):
        v = [0.0] * EMBD
        for d, x in comps:
            v[d] += x
        return v

    # embeddings: all the same norm, so the attention's query is constant
    other = struct.pack("<%de" % EMBD, *vec([(D_BIAS, 1.0), (D_OTHER, 1.0)]))
    embd = bytearray(other * n_vocab)
    for n, d in slot.items():
        row = struct.pack("<%de" % EMBD, *vec([(D_BIAS, 1.0), (d, 1.0)]))
        embd[ids[n] * EMBD * 2:(ids[n] + 1) * EMBD * 2] = row
    # output rows: logit = row . (residual / rms); a bigram link from token
    # A to B puts its logit in B's row at A's slot; markers at D_RESULT/D_CALL
    rows = {}

    def add(tok, d, x):
        rows.setdefault(ids[tok], [0.0] * EMBD)[d] += x
    for a, succ in table.items():
        for b, w in succ:
            add(b, slot[a], w)
    for first, ((wr, wc), _) in ANSWERS.items():
        add(first, D_RESULT, wr)
        add(first, D_CALL, wc)
    # any marker: never start a call again
    add("<tool_call>", D_RESULT, -4 * LINK)
    add("<tool_call>", D_CALL, -4 * LINK)
    out = bytearray(EMBD * 2 * n_vocab)
    for i, r in rows.items():
        out[i * EMBD * 2:(i + 1) * EMBD * 2] = struct.pack("<%de" % EMBD, *r)

    # attention: x is rms-normed, so a component of 1 reads as sqrt(EMBD/2)
    unit = (EMBD / 2) ** 0.5
    q = [[0.0] * EMBD for _ in range(EMBD)]  # q[out][in]
    k = [[0.0] * EMBD for _ in range(EMBD)]
    v = [[0.0] * EMBD for _ in range(EMBD)]
    o = [[0.0] * EMBD for _ in range(EMBD)]
    qk = (SCORE * EMBD ** 0.5) ** 0.5 / unit  # score = q.k / sqrt(head dim)
    q[H_ROPE][D_BIAS] = qk
    for marker, h, d in (("<tool_response>", H_RESULT, D_RESULT), ("Paris", H_CALL, D_CALL)):
        k[H_ROPE][slot[marker]] = qk
        v[h][slot[marker]] = 1.0 / unit
        o[d][h] = 1.0

    def mat(m):  # ggml dims (in, out): rows are outputs
        return [x for row in m for x in row]
    zero_ffn = [0.0] * (EMBD * FFN)
    return [
        ("token_embd.weight", (EMBD, n_vocab), bytes(embd)),
        ("output_norm.weight", (EMBD,), [1.0] * EMBD),
        ("output.weight", (EMBD, n_vocab), bytes(out)),
        ("blk.0.attn_norm.weight", (EMBD,), [1.0] * EMBD),
        ("blk.0.attn_q.weight", (EMBD, EMBD), mat(q)),
        ("blk.0.attn_k.weight", (EMBD, EMBD), mat(k)),
        ("blk.0.attn_v.weight", (EMBD, EMBD), mat(v)),
        ("blk.0.attn_output.weight", (EMBD, EMBD), mat(o)),
        ("blk.0.ffn_norm.weight", (EMBD,), [1.0] * EMBD),
        ("blk.0.ffn_gate.weight", (EMBD, FFN), zero_ffn),
        ("blk.0.ffn_up.weight", (EMBD, FFN), zero_ffn),
        ("blk.0.ffn_down.weight", (FFN, EMBD), zero_ffn),
    ]


def build(tiny, vocab, template):
    tok, tokens = tokenizer(tiny, vocab, template)
    kv, T = tiny.kv, tiny
    meta = [kv("general.architecture", T.T_STR, "llama"),
            kv("general.name", T.T_STR, "lemon-toolcall"),
            kv("general.alignment", T.T_U32, tiny.ALIGN),
            kv("llama.context_length", T.T_U32, CTX),
            kv("llama.embedding_length", T.T_U32, EMBD),
            kv("llama.block_count", T.T_U32, 1),
            kv("llama.feed_forward_length", T.T_U32, FFN),
            kv("llama.attention.head_count", T.T_U32, 1),
            kv("llama.attention.head_count_kv", T.T_U32, 1),
            kv("llama.attention.layer_norm_rms_epsilon", T.T_F32, 1e-5),
            kv("llama.rope.dimension_count", T.T_U32, EMBD),
            kv("llama.rope.freq_base", T.T_F32, 1e6),
            kv("llama.vocab_size", T.T_U32, len(tokens))] + tok
    infos, blobs, off = [], [], 0
    for name, dims, data in tensors(tokens):
        ttype = GGML_F16  # the two vocabulary-sized tensors, in half the bytes
        if not isinstance(data, bytes):
            data = struct.pack("<%df" % len(data), *data)
            ttype = GGML_F32
        infos.append(tiny.gguf_str(name) + struct.pack("<I", len(dims)) +
                     b"".join(struct.pack("<Q", d) for d in dims) +
                     struct.pack("<IQ", ttype, off))
        blobs.append(data + b"\0" * tiny.pad(len(data)))
        off += len(blobs[-1])
    head = tiny.GGUF_MAGIC + struct.pack("<IQQ", 3, len(infos), len(meta))
    head += b"".join(meta) + b"".join(infos)
    head += b"\0" * tiny.pad(len(head))
    return head + b"".join(blobs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/models/toolcall.gguf")
    ap.add_argument("--vocab", help="llama.cpp's models/ggml-vocab-qwen2.gguf")
    ap.add_argument("--template",
                    help="llama.cpp's models/templates/Qwen-Qwen2.5-7B-Instruct.jinja")
    a = ap.parse_args()
    vocab = a.vocab or find_src("models/ggml-vocab-qwen2.gguf")
    template = a.template or find_src("models/templates/Qwen-Qwen2.5-7B-Instruct.jinja")
    if not vocab or not template:
        sys.exit("make-toolcall-gguf: llama.cpp's models/ggml-vocab-qwen2.gguf and "
                 "models/templates/Qwen-Qwen2.5-7B-Instruct.jinja not found under "
                 "~/.cache/lemon-build/*/src; pass --vocab and --template")
    data = build(load_tiny(), vocab, template)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, a.out)
    print(a.out)


if __name__ == "__main__":
    main()
