package io.scopecast.actors.history;

/**
 * A remembered idempotency key: the position its first publish got and when it happened. The
 * same record lives in the scope's window, in Redis and in a hand-off.
 */
public record IdempotencyRecord(String key, String epoch, long offset, long at) {}
