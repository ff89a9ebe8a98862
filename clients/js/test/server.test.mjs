// The client against the real server jar: order, resume after the server drops the socket,
// resync after a server restart, presence and typing between two clients.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ScopecastClient } from '../scopecast.js';
import { Server, until } from './server.mjs';

let server;
before(async () => { server = await new Server().start(); });
after(async () => { await server?.stop(); });

function client(user, workspace = 'w1', extra = {}) {
  return new ScopecastClient({ url: server.url, workspace, getToken: () => server.token(user, { workspaces: [workspace] }), minDelay: 100, maxDelay: 500, ...extra });
}

test('events arrive in order; after the server drops the socket the client resumes with nothing missing', async () => {
  const c = client('alice', 'order');
  const got = [];
  c.subscribe('workspace:order', (f) => f.type === 'event' && got.push(f.offset));
  const states = [];
  c.on('state', (s) => states.push(s));
  await c.connect();
  for (let i = 0; i < 5; i++) await server.publish('workspace:order', 'e', { i });
  await until(() => got.length === 5, 10000, '5 events');

  // the server drops the socket: a disconnect that asks the client to come back
  const kicked = await server.api('POST', '/api/disconnect', { user: 'alice', code: 4008, reason: 'test', reconnect: true });
  assert.equal(kicked.status, 200);
  await until(() => c.state !== 'connected', 5000, 'the drop');
  for (let i = 5; i < 10; i++) await server.publish('workspace:order', 'e', { i });
  await until(() => got.length === 10, 15000, '10 events');
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.ok(states.includes('reconnecting'));
  c.close();
});

test('two clients see each other: presence, status and typing', async () => {
  const a = client('ann', 'team');
  const b = client('ben', 'team');
  const seenByA = [];
  a.subscribe('workspace:team', (f) => seenByA.push(f));
  b.subscribe('workspace:team', () => {});
  await a.connect();
  await b.connect();
  await until(() => seenByA.some((f) => f.type === 'presence.join' && f.user === 'ben'), 10000, 'ben joining');
  const members = await b.presence('workspace:team');
  assert.deepEqual(members.map((m) => m.user), ['ann', 'ben']);
  await b.publish('workspace:team', 'typing', { on: true });
  await until(() => seenByA.some((f) => f.event === 'typing' && f.from === 'ben'), 10000, 'typing');
  await b.setStatus('away', 'lunch');
  await until(() => seenByA.some((f) => f.type === 'presence.update' && f.status === 'away'), 10000, 'away');
  a.close();
  b.close();
});

test('after a server restart the client reconnects by itself and is told to resync (no Redis: the history is gone)', async () => {
  const c = client('carl', 'restart');
  const got = [];
  const resyncs = [];
  c.subscribe('workspace:restart', (f) => f.type === 'event' && got.push(f.offset));
  c.on('resync', (r) => resyncs.push(r));
  await c.connect();
  await server.publish('workspace:restart', 'e', {});
  await until(() => got.length === 1, 10000, 'first event');
  await server.stop();
  await server.start();
  await until(() => c.state === 'connected' && resyncs.length > 0, 30000, 'reconnected with a resync');
  assert.equal(resyncs.at(-1).scope === 'workspace:restart' || resyncs.some((r) => r.scope === 'workspace:restart'), true);
  await server.publish('workspace:restart', 'e', {});
  await until(() => got.length === 2, 10000, 'event after the restart');
  assert.equal(got[1], 1, 'offsets start again in the new epoch');
  c.close();
});
