// The web app (server/ui/) in headless Chromium driven by puppeteer-core,
// against a real lemon serve (tests/integration/test_browser.sh starts it,
// with the real CPU bundle and a loopback Hugging Face mirror holding the
// tiny model). Each step prints "ok NAME" or "FAIL NAME: why"; screenshots
// of each page at desktop and phone widths go to LEMON_SHOTS.
import puppeteer from 'puppeteer-core';
import { mkdirSync } from 'node:fs';

const URL = process.env.LEMON_URL;
const KEY = process.env.LEMON_KEY;
const SHOTS = process.env.LEMON_SHOTS;
const MODEL = process.env.LEMON_MODEL || 'tiny';
let fails = 0;
const ok = (n) => console.log('ok ' + n);
const fail = (n, why) => { console.log(`FAIL ${n}: ${why}`); fails++; };
async function step(name, fn) {
  try { await fn(); ok(name); } catch (e) { fail(name, String(e && e.message || e).split('\n')[0]); }
}

mkdirSync(SHOTS, { recursive: true });
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const page = await browser.newPage();
const errors = [];
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text() + ' ' + (m.location().url || '')); });
page.on('pageerror', (e) => errors.push(String(e)));
page.on('dialog', (d) => d.accept());
// requests still open, named when a page never gets ready
const inflight = new Map();
page.on('request', (r) => inflight.set(r, Date.now()));
page.on('requestfinished', (r) => inflight.delete(r));
page.on('requestfailed', (r) => inflight.delete(r));
page.on('response', (r) => { if (r.url().includes('/logs')) inflight.delete(r.request()); });
await page.setViewport({ width: 1280, height: 800 });

// a fresh load of the page, then the app's own navigation (as a click on
// its link), so each page is rendered once from a known state
async function open(name) {
  await page.goto(`${URL}/ui/`, { waitUntil: 'load' });
  await page.waitForSelector('main[data-ready]', { timeout: 20000 });
  if (name !== 'chat') await page.click(`#nav-${name}`);
  try {
    await page.waitForSelector(`main[data-ready="${name}"]`, { timeout: 20000 });
  } catch (e) {
    const why = await page.evaluate(() => [location.href, document.querySelector('main').dataset.page,
      document.getElementById('status').textContent].join(' | '));
    const open = [...inflight].map(([r, t]) => `${r.method()} ${new URL(r.url()).pathname} ${Date.now() - t} ms`);
    throw new Error(`${name} never ready (${why}; open: ${open.join(', ')})`);
  }
}
async function shots(name) {
  await page.setViewport({ width: 1280, height: 800 });
  await page.screenshot({ path: `${SHOTS}/${name}-desktop.png`, fullPage: true });
  await page.setViewport({ width: 360, height: 740, isMobile: true });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.screenshot({ path: `${SHOTS}/${name}-phone.png`, fullPage: true });
  await page.setViewport({ width: 1280, height: 800 });
  if (wide > 362) throw new Error(`${name} is ${wide} px wide at 360 px`);
}

await step('browser / lands on the app and the key is asked once', async () => {
  await page.goto(URL + '/', { waitUntil: 'domcontentloaded' });
  if (!page.url().endsWith('/ui/')) throw new Error('landed on ' + page.url());
  await page.waitForSelector('#keydlg[open]', { timeout: 10000 });
  await page.type('#keyin', KEY);
  await page.keyboard.press('Enter');
  await page.waitForSelector('main[data-ready="chat"]', { timeout: 20000 });
  const stored = await page.evaluate(() => sessionStorage.getItem('lemon.key'));
  if (stored !== KEY) throw new Error('key not in sessionStorage');
});

await step('models page pulls from the mirror with progress', async () => {
  await open('models');
  await page.type('#pull-name', MODEL);
  await page.click('#pull');
  await page.waitForFunction(() => !document.querySelector('#pull-progress').hidden, { timeout: 5000 });
  await page.waitForFunction(
    () => /^pulled /.test(document.querySelector('#pull-status').textContent) ||
      document.querySelector('#pull-status').className === 'err', { timeout: 60000 });
  const st = await page.$eval('#pull-status', (e) => e.textContent);
  if (!st.startsWith('pulled ')) throw new Error(st);
  const bar = await page.$eval('#pull-progress', (e) => [e.value, e.max]);
  if (!(bar[1] > 1 && bar[0] === bar[1])) throw new Error('progress bar ' + bar.join('/'));
  await page.waitForSelector(`tr[data-model="${MODEL}"]`, { timeout: 10000 });
  const row = await page.$eval(`tr[data-model="${MODEL}"]`, (e) => e.textContent);
  if (!/B/.test(row)) throw new Error('row without a size: ' + row);
});
await step('models page shows the memory plan', async () => {
  // the tiny model on this CPU-only server: the planner's CPU plan
  const td = `tr[data-model="${MODEL}"] td.plan`;
  await page.waitForSelector(td, { timeout: 10000 });
  const [plan, text] = await page.$eval(td, (e) => [e.dataset.plan, e.textContent]);
  if (plan !== 'cpu' || !/^CPU \(\d+ MiB of RAM\)$/.test(text)) throw new Error(`plan ${plan}: ${text}`);
});
await step('models screenshots', () => shots('models'));

await step('chat streams tokens from the tiny model', async () => {
  await page.evaluate(() => localStorage.removeItem('lemon.chat'));
  await open('chat');
  await page.select('#model', MODEL);
  await page.type('#system', 'You are terse.');
  await page.type('#prompt', 'Once upon a time');
  await page.keyboard.down('Control');
  await page.keyboard.press('Enter');
  await page.keyboard.up('Control');
  await page.waitForSelector('.msg.assistant .meta', { timeout: 90000 });
  const text = await page.$eval('.msg.assistant .text', (e) => e.textContent);
  const meta = await page.$eval('.msg.assistant .meta', (e) => e.textContent);
  // the page renders each server-sent event as it arrives and counts them
  const chunks = Number(await page.$eval('.msg.assistant', (e) => e.dataset.chunks));
  if (!text.length) throw new Error('empty answer');
  if (!/TTFT \d+ ms · [\d.]+ tokens\/s/.test(meta)) throw new Error('meta ' + meta);
  if (!(chunks >= 10)) throw new Error(`${chunks} events rendered: not streamed`);
  const tokens = Number(/(\d+) tokens$/.exec(meta)[1]);
  if (tokens < chunks) throw new Error(`meta counts ${tokens} tokens for ${chunks} events`);
  const saved = await page.evaluate(() => JSON.parse(localStorage.getItem('lemon.chat')));
  if (saved.messages.length !== 2 || saved.system !== 'You are terse.') throw new Error('not kept in localStorage');
});
await step('chat survives a reload', async () => {
  await open('chat');
  const n = await page.$$eval('.msg', (e) => e.length);
  if (n !== 2) throw new Error(n + ' messages after reload');
});
await step('chat screenshots', () => shots('chat'));

await step('system page shows this machine\'s checks and the recommended backend', async () => {
  await open('system');
  const checks = await page.$$eval('#checks tbody tr', (r) => r.length);
  if (checks < 3) throw new Error(checks + ' checks');
  const rec = await page.$eval('#recommended strong', (e) => e.textContent);
  if (rec !== (process.env.LEMON_RECOMMENDED || 'cpu')) throw new Error('recommended ' + rec);
  await page.waitForSelector('#fallbacks li');
});
await step('system page installs a backend with the keyboard: progress, then the row updated', async () => {
  const row = 'tr[data-backend="llamacpp:vulkan"]';
  await page.waitForSelector(`${row} button.install`, { timeout: 10000 });
  const before = await page.$eval(`${row} .current`, (e) => e.textContent);
  if (before !== 'not installed') throw new Error('vulkan row says ' + before + ' before the install');
  await page.focus(`${row} button.install`);
  await page.keyboard.press('Enter');
  // the mirror is slowed (test_browser.sh): a partial bar is seen
  await page.waitForFunction(() => {
    const b = document.querySelector('#backend-progress');
    return !b.hidden && b.hasAttribute('value') && b.value > 0 && b.value < b.max;
  }, { timeout: 10000 });
  await page.waitForFunction((r) => {
    const c = document.querySelector(r + ' .current');
    return c && c.textContent === 'v0.5.0';
  }, { timeout: 30000 }, row);
  const note = await page.$eval('#backend-status', (e) => e.textContent);
  if (!/^installed llamacpp:vulkan v0\.5\.0: \/.*\/llama-server$/.test(note)) throw new Error('status says ' + note);
  const label = await page.$eval(`${row} button.install`, (e) => e.textContent);
  if (label !== 'Reinstall') throw new Error('button says ' + label);
});
await step('system screenshots', () => shots('system'));

await step('logs page shows the history, then lines as they are logged', async () => {
  await open('logs');
  const count = () => page.$eval('#loglines', (e) => (e.textContent.match(/starting tiny/g) || []).length);
  await page.waitForFunction(() => /\[llama-server tiny/.test(document.querySelector('#loglines').textContent),
    { timeout: 10000 });
  const before = await count();
  if (before < 1) throw new Error('no "starting tiny" line in the history');
  // unload and load again through the API: the open page gets the new lines
  await page.evaluate(async (model) => {
    const h = { 'Content-Type': 'application/json', Authorization: 'Bearer ' + sessionStorage.getItem('lemon.key') };
    for (const what of ['unload', 'load']) {
      const r = await fetch('/api/v1/' + what, { method: 'POST', headers: h, body: JSON.stringify({ model_name: model }) });
      if (!r.ok) throw new Error(what + ' ' + r.status);
    }
  }, MODEL);
  await page.waitForFunction((n) => (document.querySelector('#loglines').textContent.match(/starting tiny/g) || []).length > n,
    { timeout: 30000 }, before);
});
await step('logs screenshots', () => shots('logs'));

await step('keyboard reaches the navigation', async () => {
  await open('chat');
  let found = false;
  for (let i = 0; i < 6 && !found; i++) {
    await page.keyboard.press('Tab');
    found = await page.evaluate(() => document.activeElement && document.activeElement.id === 'nav-system');
  }
  if (!found) throw new Error('Tab never reached the System link');
  await page.keyboard.press('Enter');
  await page.waitForSelector('main[data-ready="system"]', { timeout: 10000 });
});

if (errors.length) fail('no console errors', errors.slice(0, 3).join(' | '));
else ok('no console errors');
await browser.close();
process.exit(fails ? 1 : 0);
