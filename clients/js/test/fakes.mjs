// A fake clock and a fake WebSocket whose "server" side the test drives.
export class FakeClock {
  constructor() { this.now = 0; this.timers = new Map(); this.nextId = 1; }
  setTimeout = (fn, ms) => { const id = this.nextId++; this.timers.set(id, { at: this.now + ms, fn, ms }); return id; };
  clearTimeout = (id) => { this.timers.delete(id); };
  /** The delay of the next pending timer (ms from when it was set). */
  pendingDelays() { return [...this.timers.values()].map((t) => t.ms); }
  advance(ms) {
    const until = this.now + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = until;
  }
}

export function fakeSockets() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) { this.url = url; this.readyState = 0; this.sent = []; sockets.push(this); queueMicrotask(() => { this.readyState = 1; this.onopen?.(); }); }
    send(s) { this.sent.push(JSON.parse(s)); }
    close(code = 1000) { if (this.readyState === 3) return; this.readyState = 3; queueMicrotask(() => this.onclose?.({ code })); }
    // the server's side
    frame(f) { this.onmessage?.({ data: JSON.stringify(f) }); }
    serverClose(code, disconnect) {
      if (disconnect) this.frame({ type: 'disconnect', code, reason: 'test', reconnect: disconnect.reconnect });
      this.readyState = 3;
      this.onclose?.({ code: disconnect ? 1000 : code });
    }
  }
  return { FakeWebSocket, sockets };
}

export const tick = () => new Promise((r) => setImmediate(r));
