// The page router: #chat, #models, #system, each a module that fills <main>.
import { status, ensureKey } from './api.js';
import * as chat from './chat.js';
import * as models from './models.js';
import * as system from './system.js';
import * as logs from './logs.js';

const pages = { chat, models, system, logs };

async function show() {
  const name = (location.hash || '#chat').slice(1);
  const page = pages[name] || chat;
  for (const n of Object.keys(pages)) {
    const a = document.getElementById('nav-' + n);
    if (n === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('page');
  main.replaceChildren();
  main.dataset.page = name;
  status('');
  try {
    await page.render(main);
  } catch (e) {
    status(e.message, true);
  }
  main.dataset.ready = name;
}

window.addEventListener('hashchange', show);
ensureKey().then(show);
