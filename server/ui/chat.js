// Chat: a model picker (local and loaded models), the answer streamed from
// /v1/chat/completions as it arrives, a stop button, a system prompt, time
// to first token and tokens/s per answer; the conversation is kept in
// localStorage so a reload does not lose it.
import { call, getJSON, readSSE, el, status, errText } from './api.js';

const STORE = 'lemon.chat';

function load() {
  try { return JSON.parse(localStorage.getItem(STORE)) || { system: '', model: '', messages: [] }; }
  catch { return { system: '', model: '', messages: [] }; }
}
function save(c) { localStorage.setItem(STORE, JSON.stringify(c)); }

function bubble(m) {
  const meta = m.meta ? el('span', { class: 'meta' }, m.meta) : null;
  return el('div', { class: 'msg ' + m.role, 'data-role': m.role }, el('span', { class: 'text' }, m.content), meta);
}

async function modelNames() {
  const [list, health] = await Promise.all([getJSON('/v1/models'), getJSON('/api/v1/health')]);
  const names = new Set(list.data.map((m) => m.id));
  for (const l of health.loaded || []) names.add(l.model);
  return { names: [...names].sort(), loaded: new Set((health.loaded || []).map((l) => l.model)) };
}

export async function render(main) {
  const conv = load();
  const picker = el('select', { id: 'model', 'aria-label': 'model', class: 'grow' });
  const sys = el('textarea', { id: 'system', rows: '2', placeholder: 'System prompt (optional)', 'aria-label': 'system prompt' });
  const log = el('div', { id: 'log', 'aria-live': 'polite' });
  const input = el('textarea', { id: 'prompt', rows: '3', placeholder: 'Message (Ctrl+Enter to send)', 'aria-label': 'message' });
  const send = el('button', { id: 'send', type: 'submit' }, 'Send');
  const stop = el('button', { id: 'stop', type: 'button', disabled: '' }, 'Stop');
  const clear = el('button', { id: 'clear', type: 'button' }, 'New chat');
  const form = el('form', {}, input, el('div', { class: 'row' }, send, stop, clear));
  main.append(el('div', { class: 'row' }, picker), sys, log, form);
  sys.value = conv.system;
  for (const m of conv.messages) log.append(bubble(m));

  const { names, loaded } = await modelNames();
  for (const n of names) picker.append(el('option', { value: n }, loaded.has(n) ? n + ' (loaded)' : n));
  if (names.includes(conv.model)) picker.value = conv.model;
  if (!names.length) status('no models yet: pull one on the Models page');

  let ctl = null;
  sys.addEventListener('change', () => { conv.system = sys.value; save(conv); });
  picker.addEventListener('change', () => { conv.model = picker.value; save(conv); });
  clear.addEventListener('click', () => { conv.messages = []; save(conv); log.replaceChildren(); });
  stop.addEventListener('click', () => ctl && ctl.abort());
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || !picker.value || ctl) return;
    conv.model = picker.value;
    conv.system = sys.value;
    const user = { role: 'user', content: text };
    conv.messages.push(user);
    log.append(bubble(user));
    input.value = '';
    const answer = { role: 'assistant', content: '' };
    const b = bubble(answer);
    log.append(b);
    const out = b.querySelector('.text');
    const msgs = (conv.system ? [{ role: 'system', content: conv.system }] : [])
      .concat(conv.messages.map(({ role, content }) => ({ role, content })));
    ctl = new AbortController();
    send.disabled = true; stop.disabled = false;
    const t0 = performance.now();
    let first = 0, chunks = 0, usage = null;
    try {
      const r = await call('/v1/chat/completions', {
        json: { model: conv.model, messages: msgs, stream: true, stream_options: { include_usage: true } },
        signal: ctl.signal,
      });
      if (!r.ok) throw new Error(errText(await r.json().catch(() => null), r.status));
      await readSSE(r, (ev) => {
        if (ev.usage) usage = ev.usage;
        const d = ev.choices && ev.choices[0] && ev.choices[0].delta;
        if (d && d.content) {
          if (!first) first = performance.now();
          chunks++;
          b.dataset.chunks = String(chunks);
          answer.content += d.content;
          out.textContent = answer.content;
        }
      });
    } catch (err) {
      if (err.name !== 'AbortError') status(err.message, true);
    }
    const end = performance.now();
    const n = usage && usage.completion_tokens ? usage.completion_tokens : chunks;
    if (first) {
      const tps = n > 1 && end > first ? ((n - 1) * 1000) / (end - first) : 0;
      answer.meta = `TTFT ${Math.round(first - t0)} ms · ${tps.toFixed(1)} tokens/s · ${n} tokens` +
        (ctl.signal.aborted ? ' · stopped' : '');
      b.append(el('span', { class: 'meta' }, answer.meta));
    }
    conv.messages.push(answer);
    save(conv);
    ctl = null;
    send.disabled = false; stop.disabled = true;
    input.focus();
  });
}
