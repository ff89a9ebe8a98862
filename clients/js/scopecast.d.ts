// Types of scopecast.js.

export declare const CLOSE: Readonly<{
  GOING_AWAY: 1001; TOO_BIG: 1009; UNAUTHENTICATED: 4001; TOKEN_EXPIRED: 4002; FORBIDDEN: 4003; SLOW_CONSUMER: 4008;
  HEARTBEAT: 4009; FLOOD: 4029; PROTOCOL: 4400;
}>;

export interface Position { epoch: string; offset: number }

/** A frame for a scope: an event (durable with `offset`, or ephemeral with `from`), a presence change, or a resync. */
export interface Frame {
  type: 'event' | 'resync' | 'presence.join' | 'presence.leave' | 'presence.update' | 'presence.count' | string;
  scope?: string;
  offset?: number;
  event?: string;
  payload?: unknown;
  ts?: number;
  from?: string;
  user?: string;
  status?: 'online' | 'away' | 'busy';
  text?: string;
  epoch?: string;
  reason?: string;
  /** On presence.join / leave / update frames the client derived from an unsolicited `presence` snapshot. */
  snapshot?: boolean;
  [k: string]: unknown;
}

export interface Member { user: string; connections: number; status: 'online' | 'away' | 'busy'; text: string }

export type State = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface Options {
  /** ws:// or wss:// URL of the server's /ws */
  url: string;
  /** Returns a (fresh) connection token; called for every (re)connection. */
  getToken: () => string | Promise<string>;
  /** A workspace to join (auto-subscribed). */
  workspace?: string;
  /** A WebSocket implementation; default: the global one. */
  WebSocket?: unknown;
  /** Reconnect delay caps in ms: the n-th retry waits uniform(0, min(maxDelay, minDelay * 2^n)). Defaults 1000, 30000. */
  minDelay?: number;
  maxDelay?: number;
  random?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (id: unknown) => void;
  /** ms to wait for a reply (10000). */
  requestTimeout?: number;
  /** ms a connection attempt may take until `connected` before it is given up and retried (10000). */
  connectTimeout?: number;
}

export interface ResyncInfo { scope: string; epoch: string; offset: number; reason: string }

/** A subscription in place on the current connection. */
export interface SubscribedInfo { scope: string; epoch: string; offset: number; recovered: boolean }

/** What subscribe() returns: call it to remove the handler. */
export interface Unsubscribe {
  (): void;
  /** ready(scope) taken when subscribe() was called. */
  readonly ready: Promise<SubscribedInfo>;
}

export declare class ScopecastClient {
  constructor(options: Options);
  readonly state: State;
  readonly user: string | null;
  readonly node: string | null;
  connect(): Promise<Frame>;
  close(): void;
  subscribe(scope: string, handler: (frame: Frame) => void, options?: { token?: string }): Unsubscribe;
  /**
   * Resolves once the scope is subscribed on the current (or next) connection: on the server's real
   * answer, not on a pending one. Rejects on refusal, on connection loss or close first, on no reply
   * within requestTimeout, or when the scope is not subscribed.
   */
  ready(scope: string): Promise<SubscribedInfo>;
  /** True while the server accepted the subscription but the scope's owner has not answered yet. */
  isPending(scope: string): boolean;
  /** The scope's members as far as this client knows them (presence() replies, snapshots, join/leave/update). */
  members(scope: string): Member[];
  unsubscribe(scope: string): Promise<void>;
  publish(scope: string, event: string, payload?: unknown): Promise<Frame>;
  presence(scope: string): Promise<Member[]>;
  setStatus(status: 'online' | 'away' | 'busy', text?: string): Promise<Frame>;
  position(scope: string): Position | null;
  backoffDelay(attempt: number): number;
  on(type: 'state', fn: (state: State, reason?: string) => void): () => void;
  on(type: 'connected', fn: (frame: Frame) => void): () => void;
  on(type: 'resync', fn: (info: ResyncInfo) => void): () => void;
  on(type: 'pending', fn: (info: { scope: string }) => void): () => void;
  on(type: 'subscribed', fn: (info: SubscribedInfo) => void): () => void;
  on(type: 'event' | 'presence' | 'error', fn: (frame: Frame) => void): () => void;
  on(type: 'disconnect', fn: (d: { code: number; reason: string; reconnect: boolean }) => void): () => void;
}

export default ScopecastClient;
