// Scopecast client for browsers and Node (20 with --experimental-websocket, 22+, or the `ws` package).
// No dependencies. It does the handshake, keeps its position in every scope, reconnects with
// exponential backoff and full jitter and resumes every scope where it left off, answers the
// server's heartbeat and notices a dead link by itself, and tells the app when it must refetch.

/** Close codes (PROTOCOL §8) and what the client does about them. */
export const CLOSE = Object.freeze({
  GOING_AWAY: 1001, TOO_BIG: 1009, UNAUTHENTICATED: 4001, FORBIDDEN: 4003, SLOW_CONSUMER: 4008,
  HEARTBEAT: 4009, FLOOD: 4029, PROTOCOL: 4400,
});

/**
 * @typedef {{epoch: string, offset: number}} Position
 * @typedef {{type: string, scope?: string, offset?: number, event?: string, payload?: any, ts?: number, from?: string, [k: string]: any}} Frame
 * @typedef {(frame: Frame) => void} Handler
 * @typedef {'idle'|'connecting'|'connected'|'reconnecting'|'closed'} State
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
    /** @type {Map<string, {handlers: Set<Handler>, position: Position|null, token?: string}>} */
    this.scopes = new Map();
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
   * 'event' (frame), 'presence' (frame), 'error' (frame), 'disconnect' ({code, reason, reconnect}).
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
    } else if (code === CLOSE.FORBIDDEN || code === CLOSE.PROTOCOL || code === CLOSE.TOO_BIG
        || (disconnect && disconnect.reconnect === false)) {
      return this.fail(`disconnected by the server (${code}${disconnect?.reason ? ': ' + disconnect.reason : ''})`);
    }
    // 1001, 4008, 4009, 4029, 4001 with a fresh token, or a close without a disconnect frame: resume
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
          this.deliver(f.scope, f);
          this.emit('presence', f);
          return;
        }
        if (f.id !== undefined && this.pending.has(f.id)) {
          const p = this.pending.get(f.id);
          this.pending.delete(f.id);
          this.clearTimeout(p.timer);
          if (f.type === 'error') p.reject(Object.assign(new Error(f.message), { code: f.code, frame: f }));
          else p.resolve(f);
          return;
        }
        if (f.type === 'error') this.emit('error', f);
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
  }

  applyEntry(e) {
    const s = this.ensure(e.scope);
    const known = s.position;
    if (!known || !e.recovered || known.epoch !== e.epoch) {
      if (known) this.emitResync({ scope: e.scope, epoch: e.epoch, offset: e.offset, reason: 'not_recovered' });
      s.position = { epoch: e.epoch, offset: e.offset };
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

  rejectAll(err) {
    for (const p of this.pending.values()) { this.clearTimeout(p.timer); p.reject(err); }
    this.pending.clear();
  }

  sendSubscribe(scope, s) {
    const frame = { type: 'subscribe', scope };
    if (s.position) frame.since = s.position;
    if (s.token) frame.token = s.token;
    return this.request(frame).then((r) => {
      this.applyEntry(r);
      return r;
    });
  }

  // ---- the app's API ---------------------------------------------------------------------

  /**
   * Receives the scope's events (and presence and resync frames) in order, across reconnects.
   * `token`: a subscription token when the connection token does not grant the scope.
   * Returns a function that unsubscribes this handler.
   */
  subscribe(scope, handler, { token } = {}) {
    const s = this.ensure(scope);
    if (token) s.token = token;
    const first = s.handlers.size === 0;
    s.handlers.add(handler);
    if (first && this.state === 'connected') this.sendSubscribe(scope, s).catch((e) => this.emit('error', e.frame || e));
    return () => {
      s.handlers.delete(handler);
      if (s.handlers.size === 0) this.unsubscribe(scope);
    };
  }

  /** Stops receiving a scope and forgets its position. */
  unsubscribe(scope) {
    this.scopes.delete(scope);
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
