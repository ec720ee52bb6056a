#!/usr/bin/env python3
"""NOT llama-server: a stand-in that answers tool calls the way llama-server does.

Why it exists: the tests need a child that emits a tool call, and no model
that can run in the tests does. The tiny random-weight models never emit
one (tried with llama-server 0.5.0 of the CPU bundle, --jinja, the Qwen2.5,
Hermes-2-Pro and Qwen3-Coder tool templates of llama.cpp's
models/templates, tool_choice "required": the sampler chain got no tool
grammar and the text stayed random; a request "grammar" is refused next to
tools). So lemon's Ollama tool-call translation is tested against this
replay, started by lemon in place of llama-server (LEMON_LLAMA_SERVER_CPU).

What it answers is not a recording of a real model: it is written in the
exact shape llama-server 0.5.0 sends, from its source
(tools/server/server-chat.cpp server_chat_msg_diff_to_json_oaicompat for the
streamed deltas: first {index, id, type, function{name}}, then
{index, function{arguments}} fragments; tools/server/server-task.cpp for
finish_reason "tool_calls", the final usage event and the whole answer's
message.tool_calls). Routes: GET /health, /props, /metrics; POST
/v1/chat/completions. A request with "tools" whose last message is not a
tool result gets a call of the first tool with arguments {"city": "Paris"};
any other gets the text "22 degrees".
Each request body is appended as one JSON line to the file named by
LEMON_REPLAY_LOG, so a test can check what lemon sent.

usage (as lemon runs a child): llama-server-toolcall-replay.py -m MODEL
    --host 127.0.0.1 --port N [any other llama-server flags]
"""
import http.server
import json
import os
import sys
import time

TEMPLATE = "{%- if tools %}<tools>{{ tools | tojson }}</tools>{%- endif %}(replay)"


def arg(name, default=None):
    a = sys.argv
    return a[a.index(name) + 1] if name in a and a.index(name) + 1 < len(a) else default


ALIAS = arg("--alias", "model")


def chunk(delta, finish=None, usage=None):
    ev = {"choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
          "created": int(time.time()), "id": "chatcmpl-replay", "model": ALIAS,
          "system_fingerprint": "b0-replay", "object": "chat.completion.chunk"}
    if usage is not None:
        ev["choices"] = []
        ev["usage"] = usage
        ev["timings"] = {"cache_n": 0, "prompt_n": usage["prompt_tokens"], "prompt_ms": 1.0,
                         "predicted_n": usage["completion_tokens"], "predicted_ms": 2.0,
                         "predicted_per_second": 500.0}
    return "data: " + json.dumps(ev, separators=(",", ":")) + "\n\n"


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="application/json"):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        if self.path == "/health":
            self.send(200, '{"status":"ok"}')
        elif self.path == "/props":
            self.send(200, json.dumps({"chat_template": TEMPLATE, "modalities": {"vision": False}}))
        elif self.path == "/metrics":
            self.send(200, "# HELP llamacpp:requests_processing Number of requests processing\n"
                      "# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 0\n",
                      "text/plain; version=0.0.4")
        else:
            self.send(404, '{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}')

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        log = os.environ.get("LEMON_REPLAY_LOG")
        if log:
            with open(log, "a") as f:
                f.write(json.dumps(body) + "\n")
        if self.path != "/v1/chat/completions":
            self.send(404, '{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}')
            return
        tools = body.get("tools") or []
        usage = {"completion_tokens": 12, "prompt_tokens": 40, "total_tokens": 52}
        msgs = body.get("messages") or [{}]
        # a model answers the tool's result rather than calling again
        name = tools[0]["function"]["name"] if tools and msgs[-1].get("role") != "tool" else None
        if not body.get("stream"):
            msg = {"role": "assistant", "content": "22 degrees" if not name else None}
            if name:
                msg["tool_calls"] = [{"type": "function", "function": {
                    "name": name, "arguments": "{\"city\": \"Paris\"}"}, "id": "replay0"}]
            self.send(200, json.dumps({
                "choices": [{"finish_reason": "tool_calls" if name else "stop", "index": 0,
                             "message": msg}],
                "created": int(time.time()), "model": ALIAS, "object": "chat.completion",
                "usage": usage, "id": "chatcmpl-replay"}))
            return
        ev = [chunk({"role": "assistant", "content": None})]
        if name:
            ev.append(chunk({"tool_calls": [{"index": 0, "id": "replay0", "type": "function",
                                             "function": {"name": name}}]}))
            for frag in ("{\"city\": ", "\"Paris\"}"):
                ev.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": frag}}]}))
            ev.append(chunk({}, "tool_calls"))
        else:
            for frag in ("22", " degrees"):
                ev.append(chunk({"content": frag}))
            ev.append(chunk({}, "stop"))
        ev.append(chunk({}, usage=usage))
        ev.append("data: [DONE]\n\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for e in ev:
            b = e.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


if __name__ == "__main__":
    if "--version" in sys.argv:
        print("version: 0 (replay)")
        sys.exit(0)
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    http.server.ThreadingHTTPServer((arg("--host", "127.0.0.1"), int(arg("--port", "8080"))), H).serve_forever()
