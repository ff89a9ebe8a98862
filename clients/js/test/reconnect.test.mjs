// Reconnect policy, backoff and close codes against a fake server and a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScopecastClient } from '../scopecast.js';
import { FakeClock, fakeSockets, tick } from './fakes.mjs';

function setup({ random = () => 0.5, tokens } = {}) {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeSockets();
  let n = 0;
  const getToken = () => (tokens ? tokens[n++] : `token-${n++}`);
  const client = new ScopecastClient({ url: 'ws://x/ws', getToken, workspace: '7', WebSocket: FakeWebSocket, random, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout });
  const states = [];
  client.on('state', (s) => states.push(s));
  return { clock, sockets, client, states };
}

async function accept(socket, scopes = [{ scope: 'user:u1', epoch: 'E', offset: 3, recovered: true }, { scope: 'workspace:7', epoch: 'W', offset: 10, recovered: true }]) {
  await tick();
  socket.frame({ type: 'connected', conn: 'c', user: 'u1', node: 'n', heartbeat: { interval_ms: 25000, timeout_ms: 10000 }, scopes });
}

test('backoff is exponential with full jitter, capped at 30 s', () => {
  const { client } = setup({ random: () => 0.999999 });
  const caps = [0, 1, 2, 3, 4, 5, 6, 10].map((a) => client.backoffDelay(a));
  assert.deepEqual(caps, [999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
  const low = setup({ random: () => 0 }).client;
  assert.equal(low.backoffDelay(5), 0, 'full jitter reaches down to 0');
});

test('reconnect delays grow with each failure and reset once connected', async () => {
  const { clock, sockets, client } = setup({ random: () => 0.5 });
  client.connect();
  await tick();
  await accept(sockets[0]);
  sockets[0].serverClose(1006); // network loss: no disconnect frame
  assert.deepEqual(clock.pendingDelays(), [500], 'first retry: uniform(0, 1000)');
  clock.advance(500);
  await tick();
  sockets[1].serverClose(1006); // fails before connected
  assert.deepEqual(clock.pendingDelays(), [1000], 'second retry: uniform(0, 2000)');
  clock.advance(1000);
  await tick();
  await accept(sockets[2]);
  sockets[2].serverClose(1006);
  assert.deepEqual(clock.pendingDelays().slice(-1), [500], 'after a successful connect the backoff starts over');
});

test('a dropped connection resumes every scope from its last position, and nothing is delivered twice', async () => {
  const { clock, sockets, client } = setup();
  const got = [];
  client.subscribe('workspace:7', (f) => f.type === 'event' && got.push(f.offset));
  client.connect();
  await tick();
  await accept(sockets[0]);
  sockets[0].frame({ type: 'event', scope: 'workspace:7', offset: 11, event: 'e', payload: {}, ts: 1 });
  sockets[0].serverClose(4008, { reconnect: true });
  clock.advance(30000);
  await tick();
  await tick();
  const connect = sockets[1].sent[0];
  assert.equal(connect.type, 'connect');
  assert.deepEqual(connect.resume, { 'user:u1': { epoch: 'E', offset: 3 }, 'workspace:7': { epoch: 'W', offset: 11 } });
  await accept(sockets[1], [{ scope: 'user:u1', epoch: 'E', offset: 3, recovered: true }, { scope: 'workspace:7', epoch: 'W', offset: 12, recovered: true }]);
  sockets[1].frame({ type: 'event', scope: 'workspace:7', offset: 11, event: 'e', payload: {}, ts: 1 }); // a duplicate
  sockets[1].frame({ type: 'event', scope: 'workspace:7', offset: 12, event: 'e', payload: {}, ts: 1 });
  assert.deepEqual(got, [11, 12]);
});

test('recovered:false and resync frames are surfaced so the app refetches', async () => {
  const { clock, sockets, client } = setup();
  const resyncs = [];
  client.on('resync', (r) => resyncs.push(r));
  client.connect();
  await tick();
  await accept(sockets[0]);
  sockets[0].frame({ type: 'resync', scope: 'workspace:7', epoch: 'W2', offset: 0, reason: 'redis_outage' });
  sockets[0].serverClose(1001, { reconnect: true });
  clock.advance(30000);
  await tick();
  await accept(sockets[1], [{ scope: 'user:u1', epoch: 'E9', offset: 0, recovered: false }, { scope: 'workspace:7', epoch: 'W2', offset: 0, recovered: true }]);
  assert.deepEqual(resyncs.map((r) => [r.scope, r.epoch, r.reason]), [['workspace:7', 'W2', 'redis_outage'], ['user:u1', 'E9', 'not_recovered']]);
  assert.deepEqual(client.position('user:u1'), { epoch: 'E9', offset: 0 });
});

for (const code of [1001, 4008, 4009, 4029]) {
  test(`disconnect ${code}: reconnect with resume`, async () => {
    const { clock, sockets, client, states } = setup();
    client.connect();
    await tick();
    await accept(sockets[0]);
    sockets[0].serverClose(code, { reconnect: true });
    assert.equal(client.state, 'reconnecting');
    clock.advance(60000);
    await tick();
    assert.equal(sockets.length, 2, 'a new socket');
    assert.ok(sockets[1].sent[0]?.resume, 'with resume');
    assert.ok(states.includes('reconnecting'));
  });
}

for (const code of [4003, 4400, 1009]) {
  test(`disconnect ${code}: no reconnect`, async () => {
    const { clock, sockets, client } = setup();
    client.connect();
    await tick();
    await accept(sockets[0]);
    sockets[0].serverClose(code, { reconnect: false });
    clock.advance(120000);
    await tick();
    assert.equal(sockets.length, 1);
    assert.equal(client.state, 'closed');
  });
}

test('disconnect 4001: one retry with a fresh token from getToken, none after a second refusal', async () => {
  const { clock, sockets, client } = setup({ tokens: ['old', 'fresh', 'never'] });
  client.connect();
  await tick();
  await accept(sockets[0]);
  sockets[0].serverClose(4001, { reconnect: false });
  clock.advance(60000);
  await tick();
  await tick();
  assert.equal(sockets[1].sent[0].token, 'fresh');
  sockets[1].serverClose(4001, { reconnect: false });
  clock.advance(60000);
  await tick();
  assert.equal(sockets.length, 2);
  assert.equal(client.state, 'closed');
});

test('disconnect 4002 (token expired): reconnect with a new token from getToken and resume every scope', async () => {
  const { clock, sockets, client } = setup({ tokens: ['expiring', 'renewed'] });
  const got = [];
  client.subscribe('workspace:7', (f) => f.type === 'event' && got.push(f.offset));
  client.connect();
  await tick();
  await accept(sockets[0]);
  sockets[0].frame({ type: 'event', scope: 'workspace:7', offset: 11, event: 'e', payload: {}, ts: 1 });
  sockets[0].serverClose(4002, { reconnect: true });
  assert.equal(client.state, 'reconnecting');
  clock.advance(60000);
  await tick();
  await tick();
  assert.equal(sockets.length, 2);
  assert.equal(sockets[1].sent[0].token, 'renewed');
  assert.deepEqual(sockets[1].sent[0].resume, { 'user:u1': { epoch: 'E', offset: 3 }, 'workspace:7': { epoch: 'W', offset: 11 } });
  await accept(sockets[1], [{ scope: 'user:u1', epoch: 'E', offset: 3, recovered: true }, { scope: 'workspace:7', epoch: 'W', offset: 11, recovered: true }]);
  assert.equal(client.state, 'connected');
  // a 4002 is not a refused token: a later 4001 still gets its one retry
  sockets[1].serverClose(4002, { reconnect: true });
  clock.advance(60000);
  await tick();
  assert.equal(sockets.length, 3);
  assert.notEqual(client.state, 'closed');
});

test('a close without a disconnect frame is a reconnect with resume', async () => {
  const { clock, sockets, client } = setup();
  client.connect();
  await tick();
  await accept(sockets[0]);
  sockets[0].serverClose(1000);
  clock.advance(60000);
  await tick();
  assert.equal(sockets.length, 2);
});

test('pings are answered; a silent link is noticed by the client itself', async () => {
  const { clock, sockets, client } = setup();
  client.connect();
  await tick();
  await accept(sockets[0]);
  sockets[0].frame({ type: 'ping' });
  assert.deepEqual(sockets[0].sent.at(-1), { type: 'pong' });
  clock.advance(25000 + 10000 + 1000); // interval + timeout + 1 s without any frame
  await tick();
  assert.equal(client.state, 'reconnecting');
  clock.advance(60000);
  await tick();
  assert.equal(sockets.length, 2);
});

test('a connection attempt that never completes is given up and retried', async () => {
  const { clock, sockets, client } = setup();
  client.connect();
  await tick();
  assert.equal(sockets.length, 1); // opened, but the server never answers the connect frame
  clock.advance(10000);
  await tick();
  assert.equal(client.state, 'reconnecting');
  clock.advance(60000);
  await tick();
  assert.equal(sockets.length, 2);
});
