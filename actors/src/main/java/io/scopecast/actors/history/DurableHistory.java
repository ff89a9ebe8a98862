package io.scopecast.actors.history;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * Where a scope's history survives its owner (§11): Redis ({@link RedisHistory}), or nowhere
 * ({@link #memoryOnly()}: the owner's memory history is all there is). A scope asks
 * {@link #isUp()} before each write; a write that fails is reported with {@link #writeFailed()},
 * which makes every scope of the node stop writing until the next successful probe.
 */
public interface DurableHistory {

  /** What a scope finds when it starts; {@code epoch} is null when nothing is known of it. */
  record Loaded(String epoch, long offset, List<HistoryEntry> entries, List<IdempotencyRecord> keys) {
    public static final Loaded NOTHING = new Loaded(null, 0, List.of(), List.of());
  }

  /** One event to append, with its idempotency key (or null). */
  record Append(HistoryEntry entry, String idempotencyKey) {}

  /** False for {@link #memoryOnly()}: there is nothing to write, nothing to be down. */
  boolean enabled();

  /** Writes may be attempted: the last probe succeeded and no write failed since. */
  boolean isUp();

  /** "up", "down" or "disabled", as {@code /health/realtime} reports it. */
  String state();

  /** The scope's epoch, last offset, newest {@code maxEntries} events and idempotency keys. */
  CompletionStage<Loaded> load(String scope, int maxEntries);

  /**
   * Appends events of {@code epoch}; completes once all of it is stored. It is applied only while
   * {@code epoch} is the scope's epoch there, so a write that lands late, after a new epoch
   * started, changes nothing.
   */
  CompletionStage<Void> append(String scope, String epoch, List<Append> batch, int maxLen, Duration ttl);

  /** A new epoch for the scope: its old events are dropped and offsets restart at 1. */
  CompletionStage<Void> startEpoch(String scope, String epoch);

  /** Up to {@code limit} events after {@code after}, ascending. */
  CompletionStage<List<HistoryEntry>> read(String scope, long after, int limit);

  /** Drops idempotency keys that left the window. */
  void forgetKeys(String scope, List<String> keys);

  /** A write failed or timed out: down until a probe succeeds. */
  void writeFailed();

  /** {@code events} durable events were kept in memory only (skipped while down, or their write failed). */
  void notWritten(int events);

  static DurableHistory memoryOnly() {
    return MemoryOnly.INSTANCE;
  }

  /** No durable history: every call is a no-op, nothing is ever up. */
  enum MemoryOnly implements DurableHistory {
    INSTANCE;

    @Override public boolean enabled() { return false; }
    @Override public boolean isUp() { return false; }
    @Override public String state() { return "disabled"; }
    @Override public CompletionStage<Loaded> load(String scope, int maxEntries) {
      return CompletableFuture.completedFuture(Loaded.NOTHING);
    }
    @Override public CompletionStage<Void> append(String scope, String epoch, List<Append> batch, int maxLen, Duration ttl) {
      return CompletableFuture.completedFuture(null);
    }
    @Override public CompletionStage<Void> startEpoch(String scope, String epoch) {
      return CompletableFuture.completedFuture(null);
    }
    @Override public CompletionStage<List<HistoryEntry>> read(String scope, long after, int limit) {
      return CompletableFuture.completedFuture(List.of());
    }
    @Override public void forgetKeys(String scope, List<String> keys) {}
    @Override public void writeFailed() {}
    @Override public void notWritten(int events) {}
  }
}
