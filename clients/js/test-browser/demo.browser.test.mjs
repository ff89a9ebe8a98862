// The demo page in a real browser (Debian's chromium, driven by playwright-core) against the real
// server jar: two people see each other, messages and typing flow between them, one page's socket
// is dropped and it resumes with no missing message. Screenshots land in test-results/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server } from '../test/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.resolve(here, '../test-results');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let server;
let browser;
before(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: scripts/setup.sh installs Debian's chromium`);
  const { chromium } = await import('playwright-core');
  server = await new Server({ env: { SCOPECAST_DEMO: 'true' } }).start();
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  fs.mkdirSync(results, { recursive: true });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function join(name) {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  page.on('pageerror', (e) => console.error(`[${name}] page error: ${e.message}`));
  await page.goto(`http://127.0.0.1:${server.httpPort}/demo`);
  await page.fill('#name', name);
  await page.click('#loginForm button');
  await page.waitForSelector('#state[data-state="connected"]');
  return page;
}

const messages = (page) => page.$$eval('#messages li', (lis) => lis.map((li) => ({ offset: Number(li.dataset.offset), text: li.textContent })));

test('two people chat with presence and typing; a dropped page resumes without missing a message', async () => {
  const alice = await join('alice');
  const bob = await join('bob');

  await alice.waitForSelector('#people li[data-user="bob"]');
  await bob.waitForSelector('#people li[data-user="alice"]');

  await alice.type('#text', 'hel');
  await bob.waitForFunction(() => document.querySelector('#typing').textContent.includes('alice is typing'));
  await alice.fill('#text', 'hello bob');
  await alice.press('#text', 'Enter');
  await bob.waitForFunction(() => [...document.querySelectorAll('#messages li')].some((li) => li.textContent.includes('hello bob')));

  // alice's socket drops; bob keeps talking while she is away
  await alice.click('#drop');
  await alice.waitForSelector('#state:not([data-state="connected"])');
  await bob.fill('#text', 'while you were away');
  await bob.press('#text', 'Enter');
  await bob.fill('#text', 'and once more');
  await bob.press('#text', 'Enter');
  await alice.waitForSelector('#state[data-state="connected"]', { timeout: 30000 });
  await alice.waitForFunction(() => [...document.querySelectorAll('#messages li')].some((li) => li.textContent.includes('and once more')));

  const seenByAlice = await messages(alice);
  const seenByBob = await messages(bob);
  assert.deepEqual(seenByAlice.map((m) => m.offset), [1, 2, 3], 'every message once, in order, none missing');
  assert.deepEqual(seenByAlice, seenByBob);
  assert.ok(seenByAlice[1].text.includes('while you were away'));
  const log = await alice.textContent('#log');
  assert.match(log, /recovered=true/, 'the reconnect resumed the scope');

  await alice.screenshot({ path: path.join(results, 'demo-alice.png') });
  await bob.screenshot({ path: path.join(results, 'demo-bob.png') });
});
