// Same-origin calls to lemon's API. The key, when the server has one, is
// asked once and kept in sessionStorage (gone when the tab closes).
const KEY = 'lemon.key';

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const k = sessionStorage.getItem(KEY);
  if (k) h.Authorization = 'Bearer ' + k;
  return h;
}

function askKey() {
  const dlg = document.getElementById('keydlg');
  const input = document.getElementById('keyin');
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      if (input.value) sessionStorage.setItem(KEY, input.value);
      input.value = '';
      resolve();
    }, { once: true });
    dlg.showModal();
    input.focus();
  });
}

// before the first call: ask for the key when the server has one and this
// tab has none yet (server/ui.c answers config.json without the key)
export async function ensureKey() {
  if (sessionStorage.getItem(KEY)) return;
  const r = await fetch('config.json');
  const cfg = await r.json();
  if (cfg.api_key) await askKey();
}

// fetch with the key; a 401 asks for the key and tries once more
export async function call(path, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    const o = Object.assign({}, opts, { headers: headers(opts.headers) });
    if (o.json !== undefined) {
      o.method = o.method || 'POST';
      o.headers['Content-Type'] = 'application/json';
      o.body = JSON.stringify(o.json);
      delete o.json;
    }
    const r = await fetch(path, o);
    if (r.status !== 401 || attempt > 0) return r;
    sessionStorage.removeItem(KEY);
    await askKey();
  }
}

export async function getJSON(path) {
  const r = await call(path);
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(errText(body, r.status));
  return body;
}

export function errText(body, status) {
  if (body && body.error) return typeof body.error === 'string' ? body.error : body.error.message;
  return 'HTTP ' + status;
}

// server-sent events from a fetch body: calls onEvent with each data line's JSON
export async function readSSE(resp, onEvent) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '[DONE]') { reader.cancel().catch(() => {}); return; }
      try { onEvent(JSON.parse(data)); } catch (e) { if (e instanceof SyntaxError) continue; throw e; }
    }
  }
}

export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

export function status(text, isErr) {
  const s = document.getElementById('status');
  s.textContent = text || '';
  s.className = isErr ? 'err' : '';
}

export function bytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + ' ' + u[i];
}
