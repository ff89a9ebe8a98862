package io.scopecast.actors.history;

/** One durable event as kept in history: its offset, publish time (ms) and encoded event frame. */
public record HistoryEntry(long offset, long ts, String frame) {}
