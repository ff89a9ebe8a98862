// Scopecast client for browsers and Node (20 with --experimental-websocket, 22+, or the `ws` package).
// No dependencies. It does the handshake, keeps its position in every scope, reconnects with
// exponential backoff and full jitter and resumes every scope where it left off, answers the
// server's heartbeat and notices a dead link by itself, and tells the app when it must refetch.

/** Close codes (PROTOCOL §8) and what the client does about them. */
export const CLOSE = Object.freeze({
  GOING_AWAY: 1001, TOO_BIG: 1009, UNAUTHENTICATED: 4001, TOKEN_EXPIRED: 4002, FORBIDDEN: 4003,
  SLOW_CONSUMER: 4008, HEARTBEAT: 4009, FLOOD: 4029, PROTOCOL: 4400,
});

/**
 * @typedef {{epoch: string, offset: number}} Position
 * @typedef {{type: string, scope?: string, offset?: number, event?: string, payload?: any, ts?: number, from?: string, [k: string]: any}} Frame
 * @typedef {(frame: Frame) => void} Handler
 * @typedef {'idle'|'connecting'|'connected'|'reconnecting'|'closed'} State
 * @typedef {{user: string, connections: number, status: string, text: string}} Member
 * @typedef {{scope: string, epoch: string, offset: number, recovered: boolean}} Subscribed
 * Per scope and connection: undefined (not asked on this connection), 'subscribing' (asked, no
 * reply yet), 'pending' (the server accepted it but the scope's owner has not answered yet,
 * PROTOCOL §13.18), 'subscribed', 'refused' (an error ended it).
 * @typedef {undefined|'subscribing'|'pending'|'subscribed'|'refused'} SubStatus
 *
 * @typedef {object} Options
 * @property {string} url                      ws:// or wss:// URL of /ws
 * @property {() => (string|Promise<string>)} getToken  returns a (fresh) connection token
 * @property {string} [workspace]              workspace to join (auto-subscribed)
 * @property {typeof WebSocket} [WebSocket]    a WebSocket implementation (default: the global one)
 * @property {number} [minDelay]               first reconnect delay cap in ms (1000)
 * @property {number} [maxDelay]               reconnect delay cap in ms (30000)
 * @property {() => number} [random]           random in [0, 1) (for tests)
 * @property {(fn: () => void, ms: number) => any} [setTimeout]
 * @property {(id: any) => void} [clearTimeout]
 * @property {number} [requestTimeout]         ms to wait for a reply (10000)
 * @property {number} [connectTimeout]         ms a connection attempt may take until `connected` (10000)
 */

export class ScopecastClient {
  /** @param {Options} options */
  constructor(options) {
    if (!options || !options.url || typeof options.getToken !== 'function') {
      throw new TypeError('ScopecastClient needs {url, getToken}');
    }
    this.url = options.url;
    this.getToken = options.getToken;
    this.workspace = options.workspace;
    this.WS = options.WebSocket || globalThis.WebSocket;
    if (!this.WS) throw new TypeError('no WebSocket implementation: pass {WebSocket} (e.g. the ws package)');
    this.minDelay = options.minDelay ?? 1000;
    this.maxDelay = options.maxDelay ?? 30000;
    this.random = options.random || Math.random;
    this.setTimeout = options.setTimeout || ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.clearTimeout = options.clearTimeout || ((id) => globalThis.clearTimeout(id));
    this.requestTimeout = options.requestTimeout ?? 10000;
    this.connectTimeout = options.connectTimeout ?? 10000;

    /** @type {State} */
    this.state = 'idle';
    /** @type {Map<string, {handlers: Set<Handler>, position: Position|null, token?: string, status?: SubStatus, entry?: Subscribed, error?: Error, members?: Map<string, Member>}>} */
    this.scopes = new Map();
    /** ready(scope) promises not settled yet: @type {Map<string, Set<{resolve: Function, reject: Function}>>} */
    this.waiters = new Map();
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    /** @type {Map<string|number, {resolve: Function, reject: Function, timer: any}>} */
    this.pending = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.socket = null;
    this.user = null;
    this.node = null;
    this.lastReason = null;
    this.reconnectTimer = null;
    this.silenceTimer = null;
    this.heartbeat = null;
    this.stopped = false;
    this.tokenRejected = false;
  }

  // ---- events ----------------------------------------------------------------------------

  /**
   * Listen to 'state' (state, reason), 'connected' (frame), 'resync' ({scope, epoch, offset, reason}),
   * 'event' (frame), 'presence' (frame), 'error' (frame), 'disconnect' ({code, reason, reconnect}),
   * 'pending' ({scope}: the server accepted the subscription but cannot serve it yet, §13.18),
   * 'subscribed' ({scope, epoch, offset, recovered}: the subscription is in place on this connection,
   * from `connected`, a `subscribe` reply, or the server's later answer to a pending one).
   * Returns a function that removes the listener.
   */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type)?.delete(fn);
  }

  emit(type, ...args) {
    for (const fn of this.listeners.get(type) || []) {
      try { fn(...args); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }

  setState(state, reason) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state, reason);
  }

  // ---- connecting ------------------------------------------------------------------------

  /** Connects (again); resolves with the `connected` frame. */
  connect() {
    this.stopped = false;
    if (this.socket) return this.connectedPromise;
    this.connectedPromise = new Promise((resolve, reject) => { this.resolveConnected = resolve; this.rejectConnected = reject; });
    this.connectedPromise.catch(() => {});
    this.open();
    return this.connectedPromise;
  }

  async open() {
    this.setState(this.attempt === 0 && !this.user ? 'connecting' : 'reconnecting');
    let token;
    try {
      token = await this.getToken();
    } catch (e) {
      this.fail('getToken failed: ' + (e?.message || e));
      return;
    }
    if (this.stopped) return;
    const ws = new this.WS(this.url);
    this.socket = ws;
    // a connection attempt that neither fails nor completes (a server going down, a black hole) is given up
    this.clearTimeout(this.silenceTimer);
    this.silenceTimer = this.setTimeout(() => {
      if (ws !== this.socket || this.state === 'connected') return;
      try { ws.close(); } catch { /* closed */ }
      this.onClose(ws, null, 1006);
    }, this.connectTimeout);
    let gotDisconnect = null;
    ws.onopen = () => {
      const frame = { type: 'connect', token };
      if (this.workspace !== undefined) frame.workspace = this.workspace;
      const resume = {};
      for (const [scope, s] of this.scopes) if (s.position) resume[scope] = s.position;
      if (Object.keys(resume).length) frame.resume = resume;
      ws.send(JSON.stringify(frame));
    };
    ws.onmessage = (m) => {
      let f;
      try { f = JSON.parse(typeof m.data === 'string' ? m.data : String(m.data)); } catch { return; }
      if (f.type === 'disconnect') gotDisconnect = f;
      this.onFrame(f);
    };
    ws.onclose = (e) => this.onClose(ws, gotDisconnect, e?.code);
    ws.onerror = () => { /* onclose follows */ };
  }

  /** Closes for good (no reconnect). */
  close() {
    this.stopped = true;
    this.clearTimeout(this.reconnectTimer);
    this.clearTimeout(this.silenceTimer);
    const ws = this.socket;
    this.socket = null;
    if (ws) try { ws.close(1000); } catch { /* closed */ }
    this.rejectAll(new Error('closed'));
    this.setState('closed', 'closed by the app');
  }

  onClose(ws, disconnect, closeCode) {
    if (ws !== this.socket) return;
    this.socket = null;
    this.clearTimeout(this.silenceTimer);
    this.rejectAll(new Error('connection lost'));
    if (this.stopped) return;
    const code = disconnect ? disconnect.code : closeCode;
    if (disconnect) this.emit('disconnect', disconnect);
    if (code === CLOSE.UNAUTHENTICATED) {
      // retry only with a fresh token; a second rejection in a row stops
      if (this.tokenRejected) return this.fail('the token was refused (4001)');
      this.tokenRejected = true;
    } else if (code === CLOSE.TOKEN_EXPIRED) {
      // the token expired without a refresh (§14.2): reconnect with resume; open() asks getToken() for a new one
    } else if (code === CLOSE.FORBIDDEN || code === CLOSE.PROTOCOL || code === CLOSE.TOO_BIG
        || (disconnect && disconnect.reconnect === false)) {
      return this.fail(`disconnected by the server (${code}${disconnect?.reason ? ': ' + disconnect.reason : ''})`);
    }
    // 1001, 4002, 4008, 4009, 4029, 4001 with a fresh token, or a close without a disconnect frame: resume
    this.scheduleReconnect(code === CLOSE.FLOOD || code === CLOSE.SLOW_CONSUMER);
  }

  fail(reason) {
    this.stopped = true;
    this.lastReason = reason;
    this.rejectAll(new Error(reason));
    this.rejectConnected?.(new Error(reason));
    this.setState('closed', reason);
  }

  /** Exponential backoff with full jitter: uniform in [0, min(maxDelay, minDelay * 2^attempt)]. */
  backoffDelay(attempt) {
    const cap = Math.min(this.maxDelay, this.minDelay * 2 ** attempt);
    return Math.floor(this.random() * cap);
  }

  scheduleReconnect(slowDown = false) {
    const delay = this.backoffDelay(this.attempt + (slowDown ? 1 : 0));
    this.attempt++;
    this.setState('reconnecting', `next attempt in ${delay} ms`);
    this.reconnectTimer = this.setTimeout(() => { if (!this.stopped) this.open(); }, delay);
    return delay;
  }

  /** The link looks dead: no frame within interval + timeout. */
  armSilenceTimer() {
    if (!this.heartbeat) return;
    this.clearTimeout(this.silenceTimer);
    const ws = this.socket;
    this.silenceTimer = this.setTimeout(() => {
      if (ws !== this.socket) return;
      try { ws.close(); } catch { /* closed */ }
      this.onClose(ws, null, 1006);
    }, this.heartbeat.interval_ms + this.heartbeat.timeout_ms + 1000);
  }

  // ---- frames ----------------------------------------------------------------------------

  onFrame(f) {
    this.armSilenceTimer();
    switch (f.type) {
      case 'connected': return this.onConnected(f);
      case 'ping': return this.send({ type: 'pong' });
      case 'event': return this.onEvent(f);
      case 'resync': return this.onResync(f);
      case 'disconnect': return;
      default:
        if (f.type.startsWith('presence.')) {
          this.trackPresence(f);
          this.deliver(f.scope, f);
          this.emit('presence', f);
          return;
        }
        if (f.id !== undefined && this.pending.has(f.id)) {
          const p = this.pending.get(f.id);
          this.pending.delete(f.id);
          this.clearTimeout(p.timer);
          // a presence reply is the member list the app now holds: track it before anything else arrives
          if (f.type === 'presence' && Array.isArray(f.members)) this.setMembers(f.scope, f.members);
          if (f.type === 'error') p.reject(Object.assign(new Error(f.message), { code: f.code, frame: f }));
          else p.resolve(f);
          return;
        }
        // unsolicited frames (no id)
        if (f.type === 'subscribed') return this.onLateSubscribed(f);
        if (f.type === 'presence') return this.onPresenceSnapshot(f);
        if (f.type === 'unsubscribed') return this.onServerUnsubscribed(f);
        if (f.type === 'error') {
          // a `resume` entry refused after `connected` (§13.3), or a pending subscription refused later
          const s = f.scope !== undefined ? this.scopes.get(f.scope) : undefined;
          if (s && s.status !== 'subscribed') {
            s.status = 'refused';
            s.error = Object.assign(new Error(f.message), { code: f.code, frame: f });
            this.settle(f.scope, s.error);
          }
          this.emit('error', f);
        }
    }
  }

  onConnected(f) {
    this.attempt = 0;
    this.tokenRejected = false;
    this.user = f.user;
    this.node = f.node;
    this.heartbeat = f.heartbeat;
    this.armSilenceTimer();
    const listed = new Set();
    for (const e of f.scopes) {
      listed.add(e.scope);
      this.applyEntry(e);
    }
    this.setState('connected');
    this.emit('connected', f);
    this.resolveConnected?.(f);
    // scopes subscribed by the app but not automatic and not resumable yet: subscribe now
    for (const [scope, s] of this.scopes) {
      if (!listed.has(scope) && s.handlers.size) this.sendSubscribe(scope, s).catch((e) => this.emit('error', e.frame || e));
    }
    // ready(scope) calls for a scope this connection neither has nor asks for: nothing will answer them
    for (const scope of [...this.waiters.keys()]) {
      if (!this.scopes.get(scope)?.status) this.settle(scope, new Error(`not subscribed to ${scope}`));
    }
  }

  /** A `connected` entry or a `subscribed` frame (answered, pending, or the late answer to a pending one). */
  applyEntry(e) {
    const s = this.ensure(e.scope);
    if (e.pending) {
      // §13.18: the owner has not answered yet. Keep the position we had (a reconnect resumes from
      // it), no resync: the real answer follows as an unsolicited `subscribed`.
      if (s.status === 'pending') return;
      s.status = 'pending';
      this.emit('pending', { scope: e.scope });
      return;
    }
    const known = s.position;
    if (!known || !e.recovered || known.epoch !== e.epoch) {
      if (known) this.emitResync({ scope: e.scope, epoch: e.epoch, offset: e.offset, reason: 'not_recovered' });
      s.position = { epoch: e.epoch, offset: e.offset };
    }
    s.status = 'subscribed';
    s.error = undefined;
    s.entry = { scope: e.scope, epoch: e.epoch, offset: e.offset, recovered: e.recovered !== false };
    this.settle(e.scope, null, s.entry);
    this.emit('subscribed', s.entry);
  }

  /** The server's answer to a pending subscription (§13.18): exactly like an answered entry. */
  onLateSubscribed(f) {
    const s = this.scopes.get(f.scope);
    if (!s) return; // unsubscribed meanwhile: do not bring the scope back
    this.applyEntry(f);
  }

  /** The server ended a subscription itself (§14.3: token lapsed, or /api/unsubscribe). */
  onServerUnsubscribed(f) {
    const s = this.scopes.get(f.scope);
    if (!s) return;
    s.status = undefined;
    this.settle(f.scope, Object.assign(new Error(`unsubscribed by the server (${f.reason || 'server'})`), { frame: f }));
  }

  /** Resolves (err null) or rejects the ready(scope) promises of a scope. */
  settle(scope, err, value) {
    const ws = this.waiters.get(scope);
    if (!ws) return;
    this.waiters.delete(scope);
    for (const w of ws) err ? w.reject(err) : w.resolve(value);
  }

  // ---- presence --------------------------------------------------------------------------

  /** Replaces the member set of a scope the client follows; returns the old one. */
  setMembers(scope, members) {
    const s = this.scopes.get(scope);
    if (!s) return new Map();
    const old = s.members || new Map();
    s.members = new Map(members.map((m) => [m.user, { user: m.user, connections: m.connections ?? 1, status: m.status ?? 'online', text: m.text ?? '' }]));
    return old;
  }

  /** Keeps the member set in step with presence.join / leave / update (idempotent set operations, §13.19). */
  trackPresence(f) {
    const s = this.scopes.get(f.scope);
    if (!s || f.user === undefined) return;
    if (!s.members) s.members = new Map();
    const had = s.members.get(f.user);
    if (f.type === 'presence.leave') s.members.delete(f.user);
    else if (f.type === 'presence.join' || f.type === 'presence.update') {
      s.members.set(f.user, {
        user: f.user, connections: had?.connections ?? 1,
        status: f.status ?? had?.status ?? 'online', text: f.text ?? had?.text ?? '',
      });
    }
  }

  /**
   * An unsolicited `presence` frame (§13.19, §13.21): the full member list, sent after presence
   * frames were dropped or the scope's owner changed. The member set is replaced, and the difference
   * reaches the app as ordinary presence.join / presence.leave / presence.update frames (with
   * `snapshot: true`), so an app that follows those frames needs nothing else.
   */
  onPresenceSnapshot(f) {
    if (!Array.isArray(f.members) || !this.scopes.has(f.scope)) return;
    const old = this.setMembers(f.scope, f.members);
    const now = this.scopes.get(f.scope).members;
    const changes = [];
    for (const [user] of old) if (!now.has(user)) changes.push({ type: 'presence.leave', scope: f.scope, user, snapshot: true });
    for (const [user, m] of now) {
      const was = old.get(user);
      if (!was) changes.push({ type: 'presence.join', scope: f.scope, user, status: m.status, text: m.text, snapshot: true });
      else if (was.status !== m.status || was.text !== m.text) changes.push({ type: 'presence.update', scope: f.scope, user, status: m.status, text: m.text, snapshot: true });
    }
    for (const c of changes) {
      this.deliver(f.scope, c);
      this.emit('presence', c);
    }
  }

  onEvent(f) {
    if (f.offset === undefined) { // ephemeral (client events)
      this.deliver(f.scope, f);
      this.emit('event', f);
      return;
    }
    const s = this.ensure(f.scope);
    if (s.position && f.offset <= s.position.offset) return; // already seen: never twice
    if (s.position && f.offset !== s.position.offset + 1) {
      // should not happen (the server fills gaps or says resync); treat it as a resync
      this.emitResync({ scope: f.scope, epoch: s.position.epoch, offset: f.offset - 1, reason: 'gap' });
    }
    s.position = { epoch: s.position ? s.position.epoch : '', offset: f.offset };
    this.deliver(f.scope, f);
    this.emit('event', f);
  }

  onResync(f) {
    this.ensure(f.scope).position = { epoch: f.epoch, offset: f.offset };
    this.emitResync({ scope: f.scope, epoch: f.epoch, offset: f.offset, reason: f.reason });
  }

  emitResync(r) {
    this.deliver(r.scope, { type: 'resync', ...r });
    this.emit('resync', r);
  }

  deliver(scope, f) {
    for (const h of this.scopes.get(scope)?.handlers || []) {
      try { h(f); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }

  ensure(scope) {
    if (!this.scopes.has(scope)) this.scopes.set(scope, { handlers: new Set(), position: null });
    return this.scopes.get(scope);
  }

  // ---- requests --------------------------------------------------------------------------

  send(frame) {
    if (!this.socket || this.socket.readyState !== 1) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  request(frame) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.send({ ...frame, id })) return reject(new Error('not connected'));
      const timer = this.setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no reply to ${frame.type} within ${this.requestTimeout} ms`));
      }, this.requestTimeout);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  /** The connection is gone (or never came): every reply and every subscription state with it. */
  rejectAll(err) {
    for (const p of this.pending.values()) { this.clearTimeout(p.timer); p.reject(err); }
    this.pending.clear();
    for (const s of this.scopes.values()) { s.status = undefined; s.error = undefined; }
    for (const scope of [...this.waiters.keys()]) this.settle(scope, err);
  }

  sendSubscribe(scope, s) {
    const frame = { type: 'subscribe', scope };
    if (s.position) frame.since = s.position;
    if (s.token) frame.token = s.token;
    s.status = 'subscribing';
    return this.request(frame).then((r) => {
      if (this.scopes.get(scope) === s) this.applyEntry(r);
      return r;
    }, (e) => {
      if (this.scopes.get(scope) === s && s.status === 'subscribing') {
        s.status = e.code ? 'refused' : undefined;
        s.error = e;
        this.settle(scope, e);
      }
      throw e;
    });
  }

  // ---- the app's API ---------------------------------------------------------------------

  /**
   * Receives the scope's events (and presence and resync frames) in order, across reconnects.
   * `token`: a subscription token when the connection token does not grant the scope.
   * Returns a function that unsubscribes this handler; its `ready` property is `ready(scope)`
   * taken at this call (await it to know the subscription is in place).
   */
  subscribe(scope, handler, { token } = {}) {
    const s = this.ensure(scope);
    if (token) s.token = token;
    const first = s.handlers.size === 0;
    s.handlers.add(handler);
    if (first && this.state === 'connected') this.sendSubscribe(scope, s).catch((e) => this.emit('error', e.frame || e));
    const off = () => {
      s.handlers.delete(handler);
      if (s.handlers.size === 0 && this.scopes.get(scope) === s) this.unsubscribe(scope);
    };
    off.ready = this.ready(scope);
    off.ready.catch(() => {}); // an app that never looks at it gets no unhandled rejection
    return off;
  }

  /**
   * Resolves with {scope, epoch, offset, recovered} once the scope is subscribed on the current
   * (or next) connection: on the server's real answer, not on a pending one (§13.18), however
   * long the server takes. Rejects when the subscription is refused (the error, with `code`), when
   * the connection is lost or closed before that (the client still resumes the scope when it
   * reconnects: call ready() again), when there is no reply within `requestTimeout`, or when the
   * scope is not subscribed at all.
   * @returns {Promise<Subscribed>}
   */
  ready(scope) {
    const s = this.scopes.get(scope);
    if (this.state === 'connected') {
      if (s?.status === 'subscribed') return Promise.resolve(s.entry);
      if (s?.status === 'refused') return Promise.reject(s.error);
      if (!s?.status) return Promise.reject(new Error(`not subscribed to ${scope}`));
    } else if (this.stopped || this.state === 'closed') {
      return Promise.reject(new Error(this.lastReason || 'closed'));
    }
    return new Promise((resolve, reject) => {
      if (!this.waiters.has(scope)) this.waiters.set(scope, new Set());
      this.waiters.get(scope).add({ resolve, reject });
    });
  }

  /** True while the server has accepted the scope's subscription but cannot serve it yet (§13.18). */
  isPending(scope) {
    return this.scopes.get(scope)?.status === 'pending';
  }

  /**
   * The scope's members as far as this client knows them ([{user, connections, status, text}]):
   * from the last presence() reply or unsolicited `presence` snapshot, kept up to date with
   * presence.join / leave / update. `connections` is exact only as of that list.
   */
  members(scope) {
    return [...(this.scopes.get(scope)?.members?.values() || [])].map((m) => ({ ...m }));
  }

  /** Stops receiving a scope and forgets its position. */
  unsubscribe(scope) {
    this.scopes.delete(scope);
    this.settle(scope, new Error(`unsubscribed from ${scope}`));
    if (this.state === 'connected') return this.request({ type: 'unsubscribe', scope }).catch(() => {});
    return Promise.resolve();
  }

  /** A client event (e.g. typing) to the scope's other connections. Resolves on ack. */
  publish(scope, event, payload = {}) {
    return this.request({ type: 'publish', scope, event, payload });
  }

  /** The scope's members: [{user, connections, status, text}]. */
  presence(scope) {
    return this.request({ type: 'presence', scope }).then((r) => r.members);
  }

  /** 'online' | 'away' | 'busy', with an optional text (≤ 128 characters). */
  setStatus(status, text = '') {
    return this.request({ type: 'status', status, text });
  }

  /** The last position in a scope ({epoch, offset}), or null. */
  position(scope) {
    return this.scopes.get(scope)?.position || null;
  }
}

export default ScopecastClient;
