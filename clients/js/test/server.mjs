// Starts the real server jar for the tests on free loopback ports, mints HS256 tokens, calls the API.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const JAR = path.resolve(here, '../../../app/target/scopecast.jar');

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

const b64u = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

export function sign(claims, secret) {
  const head = b64u({ alg: 'HS256', typ: 'JWT' }) + '.' + b64u(claims);
  return head + '.' + crypto.createHmac('sha256', secret).update(head).digest('base64url');
}

export class Server {
  constructor({ env = {} } = {}) {
    this.secret = 'js-test-' + crypto.randomBytes(8).toString('hex');
    this.apiKey = 'js-key-' + crypto.randomBytes(8).toString('hex');
    this.extraEnv = env;
    this.out = '';
  }

  async start() {
    if (!fs.existsSync(JAR)) throw new Error(`${JAR} not found: build it first (mvn -q -B package -DskipTests -DskipITs)`);
    this.httpPort ??= await freePort();
    const clusterPort = await freePort();
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('SCOPECAST_') || k === 'JAVA_TOOL_OPTIONS') delete env[k];
    Object.assign(env, {
      SCOPECAST_HOST: '127.0.0.1', SCOPECAST_PORT: String(this.httpPort), SCOPECAST_CLUSTER_HOST: '127.0.0.1',
      SCOPECAST_CLUSTER_PORT: String(clusterPort), SCOPECAST_JWT_SECRET: this.secret, SCOPECAST_API_KEY: this.apiKey,
      JAVA_TOOL_OPTIONS: '-Xmx256m', ...this.extraEnv,
    });
    this.proc = spawn('java', ['-jar', JAR], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (d) => { this.out += d; };
    this.proc.stdout.on('data', onData);
    this.proc.stderr.on('data', onData);
    this.exited = new Promise((r) => this.proc.on('exit', r));
    const deadline = Date.now() + 90000;
    while (!/Scopecast listening on/.test(this.out)) {
      if (this.proc.exitCode !== null) throw new Error('server exited: ' + this.out.slice(-2000));
      if (Date.now() > deadline) throw new Error('server did not start: ' + this.out.slice(-2000));
      await new Promise((r) => setTimeout(r, 50));
    }
    return this;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    await this.exited;
  }

  get url() { return `ws://127.0.0.1:${this.httpPort}/ws`; }

  token(user, { workspaces = [], ttl = 3600 } = {}) {
    return sign({ sub: user, workspaces, exp: Math.floor(Date.now() / 1000) + ttl }, this.secret);
  }

  async api(method, p, body) {
    const r = await fetch(`http://127.0.0.1:${this.httpPort}${p}`, {
      method, headers: { authorization: `Bearer ${this.apiKey}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : undefined };
  }

  async publish(scope, event, payload) {
    const r = await this.api('POST', '/api/publish', { scope, event, payload });
    if (r.status !== 200) throw new Error(`publish -> ${r.status}`);
    return r.json;
  }
}

/** Resolves when pred() holds (checked on every call of the returned notify), rejects after ms. */
export function until(pred, ms = 20000, what = 'condition') {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const check = () => {
      let v;
      try { v = pred(); } catch (e) { reject(e); return; }
      if (v) resolve(v);
      else if (Date.now() - start > ms) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 20);
    };
    check();
  });
}
