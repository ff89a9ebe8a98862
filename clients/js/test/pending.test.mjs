// Pending subscriptions (PROTOCOL §13.18) and unsolicited presence snapshots (§13.19, §13.21)
// against a fake server and a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScopecastClient } from '../scopecast.js';
import { FakeClock, fakeSockets, tick } from './fakes.mjs';

function setup() {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeSockets();
  let n = 0;
  const client = new ScopecastClient({ url: 'ws://x/ws', getToken: () => `token-${n++}`, workspace: '7', WebSocket: FakeWebSocket, random: () => 0.5, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout });
  const seen = { resync: [], pending: [], subscribed: [], presence: [], error: [] };
  for (const type of Object.keys(seen)) client.on(type, (x) => seen[type].push(x));
  return { clock, sockets, client, seen };
}

const USER = { scope: 'user:u1', epoch: 'E', offset: 3, recovered: true };
const WS = { scope: 'workspace:7', epoch: 'W', offset: 10, recovered: true };

async function accept(socket, scopes = [USER, WS]) {
  await tick();
  socket.frame({ type: 'connected', conn: 'c', user: 'u1', node: 'n', heartbeat: { interval_ms: 25000, timeout_ms: 10000 }, scopes });
}

const ev = (scope, offset) => ({ type: 'event', scope, offset, event: 'e', payload: {}, ts: 1 });

/** Connected, subscribed to task:9 at {T, 5}, then dropped and reconnecting with resume. */
async function resumingTask() {
  const t = setup();
  const got = [];
  const off = t.client.subscribe('task:9', (f) => got.push(f));
  t.client.connect();
  await tick();
  await accept(t.sockets[0]);
  const sub = t.sockets[0].sent.find((f) => f.type === 'subscribe');
  t.sockets[0].frame({ type: 'subscribed', id: sub.id, scope: 'task:9', epoch: 'T', offset: 5, recovered: true });
  await tick();
  t.sockets[0].serverClose(1001, { reconnect: true });
  t.clock.advance(60000);
  await tick();
  await tick();
  return { ...t, got, off };
}

test('a pending entry in connected keeps the position, emits pending and no resync; a reconnect still resumes from it', async () => {
  const { clock, sockets, client, seen } = await resumingTask();
  assert.deepEqual(sockets[1].sent[0].resume['task:9'], { epoch: 'T', offset: 5 });
  await accept(sockets[1], [USER, WS, { scope: 'task:9', pending: true }]);
  assert.deepEqual(seen.resync, []);
  assert.deepEqual(seen.pending, [{ scope: 'task:9' }]);
  assert.equal(client.isPending('task:9'), true);
  assert.equal(client.isPending('workspace:7'), false);
  assert.deepEqual(client.position('task:9'), { epoch: 'T', offset: 5 });
  assert.equal(sockets[1].sent.filter((f) => f.type === 'subscribe').length, 0, 'the server keeps the job: no second subscribe');

  // dropped again while pending: the next connect resumes from the same position
  sockets[1].serverClose(1006);
  assert.equal(client.isPending('task:9'), false, 'pending belongs to a connection');
  clock.advance(60000);
  await tick();
  await tick();
  assert.deepEqual(sockets[2].sent[0].resume['task:9'], { epoch: 'T', offset: 5 });
});

test('the unsolicited subscribed of a pending scope is applied like an answer: recovered:true, then the replay', async () => {
  const { sockets, client, seen, got } = await resumingTask();
  await accept(sockets[1], [USER, WS, { scope: 'task:9', pending: true }]);
  const ready = client.ready('task:9');
  let settled = false;
  ready.then(() => { settled = true; }, () => { settled = true; });
  await tick();
  assert.equal(settled, false, 'ready() waits for the real answer');
  sockets[1].frame({ type: 'subscribed', scope: 'task:9', epoch: 'T', offset: 7, recovered: true });
  sockets[1].frame(ev('task:9', 6));
  sockets[1].frame(ev('task:9', 7));
  assert.deepEqual(await ready, { scope: 'task:9', epoch: 'T', offset: 7, recovered: true });
  assert.equal(client.isPending('task:9'), false);
  assert.deepEqual(seen.resync, []);
  assert.ok(seen.subscribed.some((s) => s.scope === 'task:9' && s.offset === 7));
  assert.deepEqual(got.filter((f) => f.type === 'event').map((f) => f.offset), [6, 7]);
  assert.deepEqual(client.position('task:9'), { epoch: 'T', offset: 7 });
});

test('the unsolicited subscribed with recovered:false becomes a resync', async () => {
  const { sockets, client, seen, got } = await resumingTask();
  await accept(sockets[1], [USER, WS, { scope: 'task:9', pending: true }]);
  sockets[1].frame({ type: 'subscribed', scope: 'task:9', epoch: 'T2', offset: 0, recovered: false });
  assert.deepEqual(seen.resync, [{ scope: 'task:9', epoch: 'T2', offset: 0, reason: 'not_recovered' }]);
  assert.ok(got.some((f) => f.type === 'resync' && f.epoch === 'T2'), 'the handler is told too');
  assert.deepEqual(client.position('task:9'), { epoch: 'T2', offset: 0 });
  sockets[1].frame(ev('task:9', 1));
  assert.deepEqual(got.filter((f) => f.type === 'event').map((f) => f.offset), [1]);
  assert.equal(seen.resync.length, 1, 'no gap reported after the resync');
});

test('subscribe() answered pending: ready resolves on the late subscribed, not on the pending reply', async () => {
  const { sockets, client, seen } = setup();
  client.connect();
  await tick();
  await accept(sockets[0]);
  const got = [];
  const off = client.subscribe('task:9', (f) => got.push(f));
  const sub = sockets[0].sent.find((f) => f.type === 'subscribe');
  assert.equal(sub.since, undefined);
  sockets[0].frame({ type: 'subscribed', id: sub.id, scope: 'task:9', pending: true });
  let value;
  off.ready.then((v) => { value = v; });
  await tick();
  assert.equal(value, undefined);
  assert.equal(client.isPending('task:9'), true);
  assert.equal(client.position('task:9'), null, 'no made-up position');
  assert.deepEqual(seen.resync, []);
  assert.deepEqual(seen.error, []);
  sockets[0].frame({ type: 'subscribed', scope: 'task:9', epoch: 'T', offset: 4, recovered: true });
  await tick();
  assert.deepEqual(value, { scope: 'task:9', epoch: 'T', offset: 4, recovered: true });
  assert.deepEqual(client.position('task:9'), { epoch: 'T', offset: 4 });
  sockets[0].frame(ev('task:9', 5));
  assert.deepEqual(got.map((f) => f.offset), [5]);
  assert.deepEqual(seen.resync, []);
  // a second handler on a subscribed scope is ready at once
  assert.deepEqual(await client.subscribe('task:9', () => {}).ready, value);
});

test('a pending subscribe never hangs: ready rejects when the connection is lost, and the scope is subscribed again after the reconnect', async () => {
  const { clock, sockets, client } = setup();
  client.connect();
  await tick();
  await accept(sockets[0]);
  const off = client.subscribe('task:9', () => {});
  const sub = sockets[0].sent.find((f) => f.type === 'subscribe');
  sockets[0].frame({ type: 'subscribed', id: sub.id, scope: 'task:9', pending: true });
  sockets[0].serverClose(1006);
  await assert.rejects(off.ready, /connection lost/);
  clock.advance(60000);
  await tick();
  await tick();
  await accept(sockets[1]);
  assert.ok(sockets[1].sent.some((f) => f.type === 'subscribe' && f.scope === 'task:9'), 'subscribed again');
  const again = client.ready('task:9');
  const sub2 = sockets[1].sent.find((f) => f.type === 'subscribe');
  sockets[1].frame({ type: 'subscribed', id: sub2.id, scope: 'task:9', epoch: 'T', offset: 1, recovered: true });
  assert.equal((await again).offset, 1);
});

test('ready rejects on a refusal and on close(); a pending automatic scope is waited for', async () => {
  const { sockets, client } = setup();
  const wsReady = client.ready('workspace:7'); // before connecting: waits for the connection
  client.connect();
  await tick();
  await accept(sockets[0], [USER, { scope: 'workspace:7', pending: true }]);
  const off = client.subscribe('task:9', () => {});
  const sub = sockets[0].sent.find((f) => f.type === 'subscribe');
  sockets[0].frame({ type: 'error', id: sub.id, code: 'forbidden', message: 'no' });
  await assert.rejects(off.ready, (e) => e.code === 'forbidden');
  await assert.rejects(client.ready('task:9'), (e) => e.code === 'forbidden');
  await assert.rejects(client.ready('chat:nope'), /not subscribed/);
  assert.equal(client.isPending('workspace:7'), true);
  assert.equal(client.position('workspace:7'), null);
  client.close();
  await assert.rejects(wsReady, /closed/);
});

test('an unsolicited subscribed for a scope the client left is ignored', async () => {
  const { sockets, client } = setup();
  client.connect();
  await tick();
  await accept(sockets[0]);
  const off = client.subscribe('task:9', () => {});
  const sub = sockets[0].sent.find((f) => f.type === 'subscribe');
  sockets[0].frame({ type: 'subscribed', id: sub.id, scope: 'task:9', pending: true });
  off();
  await assert.rejects(off.ready, /unsubscribed/);
  sockets[0].frame({ type: 'subscribed', scope: 'task:9', epoch: 'T', offset: 4, recovered: true });
  assert.equal(client.position('task:9'), null);
  assert.equal(client.scopes.has('task:9'), false, 'not brought back (it would be resumed on reconnect)');
});

test('an unsolicited presence snapshot replaces the member set; the difference arrives as join/leave/update', async () => {
  const { sockets, client, seen } = setup();
  const got = [];
  client.subscribe('workspace:7', (f) => f.type.startsWith('presence') && got.push(f));
  client.connect();
  await tick();
  await accept(sockets[0]);
  const members = client.presence('workspace:7');
  const q = sockets[0].sent.find((f) => f.type === 'presence');
  sockets[0].frame({ type: 'presence', id: q.id, scope: 'workspace:7', members: [
    { user: 'u1', connections: 1, status: 'online', text: '' },
    { user: 'ann', connections: 1, status: 'online', text: '' },
    { user: 'ben', connections: 2, status: 'online', text: '' },
  ] });
  assert.equal((await members).length, 3);
  sockets[0].frame({ type: 'presence.join', scope: 'workspace:7', user: 'cid', status: 'online', text: '' });
  assert.deepEqual(client.members('workspace:7').map((m) => m.user), ['u1', 'ann', 'ben', 'cid']);
  got.length = 0;
  seen.presence.length = 0;

  // the server sends a snapshot by itself (frames dropped under pressure, §13.21, or a new owner,
  // §13.19): ben and cid are gone, ann went away, dan joined
  sockets[0].frame({ type: 'presence', scope: 'workspace:7', members: [
    { user: 'u1', connections: 1, status: 'online', text: '' },
    { user: 'ann', connections: 1, status: 'away', text: 'lunch' },
    { user: 'dan', connections: 1, status: 'busy', text: '' },
  ] });
  const summary = got.map((f) => [f.type, f.user, f.status]);
  assert.deepEqual(summary, [
    ['presence.leave', 'ben', undefined], ['presence.leave', 'cid', undefined],
    ['presence.update', 'ann', 'away'], ['presence.join', 'dan', 'busy'],
  ]);
  assert.ok(got.every((f) => f.snapshot === true && f.scope === 'workspace:7'));
  assert.deepEqual(seen.presence, got, "the 'presence' event gets the same frames");
  assert.deepEqual(client.members('workspace:7'), [
    { user: 'u1', connections: 1, status: 'online', text: '' },
    { user: 'ann', connections: 1, status: 'away', text: 'lunch' },
    { user: 'dan', connections: 1, status: 'busy', text: '' },
  ]);

  // the same snapshot again (e.g. after an owner change, §13.19) changes nothing
  got.length = 0;
  sockets[0].frame({ type: 'presence', scope: 'workspace:7', members: client.members('workspace:7') });
  assert.deepEqual(got, []);
  // live frames keep the set in step
  sockets[0].frame({ type: 'presence.leave', scope: 'workspace:7', user: 'dan' });
  assert.deepEqual(client.members('workspace:7').map((m) => m.user), ['u1', 'ann']);
});

test('a presence snapshot with no earlier member list reports every member as joined', async () => {
  const { sockets, client } = setup();
  const got = [];
  client.subscribe('chat:1', (f) => f.type.startsWith('presence') && got.push(f));
  client.connect();
  await tick();
  await accept(sockets[0]);
  const sub = sockets[0].sent.find((f) => f.type === 'subscribe');
  sockets[0].frame({ type: 'subscribed', id: sub.id, scope: 'chat:1', epoch: 'C', offset: 0, recovered: true });
  sockets[0].frame({ type: 'presence', scope: 'chat:1', members: [{ user: 'ann', connections: 1, status: 'online', text: '' }] });
  assert.deepEqual(got.map((f) => [f.type, f.user]), [['presence.join', 'ann']]);
  // and one for a scope the client does not follow is ignored
  sockets[0].frame({ type: 'presence', scope: 'chat:2', members: [{ user: 'ann', connections: 1, status: 'online', text: '' }] });
  assert.equal(client.scopes.has('chat:2'), false);
});
