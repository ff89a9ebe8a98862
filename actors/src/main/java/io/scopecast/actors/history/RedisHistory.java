package io.scopecast.actors.history;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisChannelHandler;
import io.lettuce.core.RedisConnectionStateListener;
import io.lettuce.core.Limit;
import io.lettuce.core.Range;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisURI;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.XAddArgs;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.async.RedisAsyncCommands;
import io.lettuce.core.codec.StringCodec;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.settings.ScopecastSettings;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Durable history in Redis (§11), through Lettuce's async API. Per scope, under keys that share a
 * hash tag (so they live on one Redis Cluster slot):
 *
 * <ul>
 *   <li>{@code <prefix>{scope}:events}: a stream whose entry ids are the offsets ({@code 0-<offset>}),
 *       fields {@code f} (the encoded event frame) and {@code t} (publish time, ms); trimmed with
 *       {@code MAXLEN ~ history-size}, expiring after {@code history-ttl} without writes;
 *   <li>{@code <prefix>{scope}:meta}: a hash with the scope's {@code epoch} and last {@code offset};
 *   <li>{@code <prefix>{scope}:idem}: idempotency keys, field = key, value = {@code epoch offset time}.
 * </ul>
 *
 * Commands time out after {@code scopecast.redis.timeout} and fail at once while disconnected:
 * Redis never delays a publish by more than that. Lettuce reconnects by itself, with backoff;
 * a ping every second tells whether Redis is up.
 */
public final class RedisHistory implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(RedisHistory.class);
  private static final Duration PING_EVERY = Duration.ofSeconds(1);

  /** What a scope finds in Redis when it starts; {@code epoch} is null when Redis knows nothing of it. */
  public record Loaded(String epoch, long offset, List<HistoryEntry> entries, Map<String, KeyRecord> keys) {}

  /** A remembered idempotency key: the first publish's position and when it happened. */
  public record KeyRecord(String epoch, long offset, long at) {}

  /** One event to append, with its idempotency key (or null). */
  public record Append(HistoryEntry entry, String idempotencyKey) {}

  private final RedisClient client;
  private final String prefix;
  private final Duration timeout;
  private final Duration metaTtl;
  private final ScopecastMetrics metrics;
  private final ScheduledExecutorService scheduler;
  private volatile StatefulRedisConnection<String, String> connection;
  private volatile boolean up;
  private int failedPings;
  private final CompletableFuture<Void> firstConnected = new CompletableFuture<>();

  private RedisHistory(ScopecastSettings.Redis settings, ScopecastMetrics metrics) {
    RedisURI uri = RedisURI.create(settings.url());
    uri.setTimeout(settings.timeout());
    this.client = RedisClient.create(uri);
    client.setOptions(ClientOptions.builder()
        .autoReconnect(true)
        .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
        .timeoutOptions(TimeoutOptions.enabled(settings.timeout()))
        .build());
    this.prefix = settings.keyPrefix();
    this.timeout = settings.timeout();
    this.metaTtl = settings.metaTtl();
    this.metrics = metrics;
    this.scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "scopecast-redis-health");
      t.setDaemon(true);
      return t;
    });
  }

  /** Starts connecting (in the background: a Redis that is down does not stop the server from starting). */
  public static RedisHistory connect(ScopecastSettings.Redis settings, ScopecastMetrics metrics) {
    RedisHistory h = new RedisHistory(settings, metrics);
    h.scheduler.execute(h::tryConnect);
    h.scheduler.scheduleWithFixedDelay(h::ping, PING_EVERY.toMillis(), PING_EVERY.toMillis(), TimeUnit.MILLISECONDS);
    return h;
  }

  private void tryConnect() {
    if (connection != null) return;
    try {
      StatefulRedisConnection<String, String> c = client.connect(StringCodec.UTF8);
      c.addListener(new RedisConnectionStateListener() {
        @Override
        public void onRedisConnected(RedisChannelHandler<?, ?> ch, java.net.SocketAddress address) {
          setUp(true);
        }

        @Override
        public void onRedisDisconnected(RedisChannelHandler<?, ?> ch) {
          if (up) log.warn("lost the connection to Redis; history stays in memory until it is back");
          setUp(false);
        }

        @Override
        public void onRedisExceptionCaught(RedisChannelHandler<?, ?> ch, Throwable cause) {
          // surfaced through the commands that fail
        }
      });
      connection = c;
      log.info("connected to Redis");
      setUp(true);
    } catch (RuntimeException e) {
      setUp(false);
      metrics.redisErrors.inc();
      log.warn("Redis is unreachable ({}); history stays in memory until it is back", e.getMessage());
    }
  }

  private void ping() {
    if (connection == null) {
      tryConnect();
      return;
    }
    try {
      connection.async().ping().toCompletableFuture().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      failedPings = 0;
      setUp(true);
    } catch (Exception e) {
      // a disconnect is reported at once by the connection listener; a slow answer must repeat to count
      if (++failedPings < 2 && connection.isOpen()) return;
      if (up) log.warn("Redis is down ({}); history stays in memory until it is back", e.getClass().getSimpleName());
      setUp(false);
    }
  }

  private void setUp(boolean nowUp) {
    if (nowUp && !up) log.info("Redis is up");
    up = nowUp;
    if (nowUp) firstConnected.complete(null);
    metrics.redisUp.set(nowUp ? 1 : 0);
  }

  public boolean isUp() {
    return up && connection != null && connection.isOpen();
  }

  /** Completes once Redis has been reached for the first time. */
  public CompletionStage<Void> connected() {
    return firstConnected;
  }

  public String state() {
    return isUp() ? "up" : "down";
  }

  private String events(String scope) {
    return prefix + "{" + scope + "}:events";
  }

  private String meta(String scope) {
    return prefix + "{" + scope + "}:meta";
  }

  private String idem(String scope) {
    return prefix + "{" + scope + "}:idem";
  }

  private RedisAsyncCommands<String, String> commands() {
    StatefulRedisConnection<String, String> c = connection;
    if (c == null) throw new IllegalStateException("Redis is not connected");
    return c.async();
  }

  /** The scope's epoch, last offset, newest {@code maxEntries} events and idempotency keys. */
  public CompletionStage<Loaded> load(String scope, int maxEntries) {
    return guarded(() -> {
      RedisAsyncCommands<String, String> r = commands();
      RedisFuture<Map<String, String>> meta = r.hgetall(meta(scope));
      RedisFuture<List<StreamMessage<String, String>>> tail =
          r.xrevrange(events(scope), Range.create("-", "+"), Limit.from(Math.max(1, maxEntries)));
      RedisFuture<Map<String, String>> keys = r.hgetall(idem(scope));
      return CompletableFuture.allOf(meta.toCompletableFuture(), tail.toCompletableFuture(), keys.toCompletableFuture())
          .thenApply(v -> {
            Map<String, String> m = meta.toCompletableFuture().join();
            if (m == null || !m.containsKey("epoch")) return new Loaded(null, 0, List.of(), Map.of());
            List<HistoryEntry> entries = new ArrayList<>();
            for (StreamMessage<String, String> msg : tail.toCompletableFuture().join()) entries.add(entry(msg));
            Collections.reverse(entries);
            long offset = Long.parseLong(m.getOrDefault("offset", "0"));
            if (!entries.isEmpty()) offset = Math.max(offset, entries.get(entries.size() - 1).offset());
            Map<String, KeyRecord> records = new HashMap<>();
            keys.toCompletableFuture().join().forEach((k, val) -> {
              String[] parts = val.split(" ");
              if (parts.length == 3) records.put(k, new KeyRecord(parts[0], Long.parseLong(parts[1]), Long.parseLong(parts[2])));
            });
            return new Loaded(m.get("epoch"), offset, entries, records);
          });
    });
  }

  /**
   * Appends events of {@code epoch} in one pipelined write (XADD per event, the meta hash, the
   * idempotency keys, the expiries); completes once Redis has acknowledged all of it.
   */
  public CompletionStage<Void> append(String scope, String epoch, List<Append> batch, int maxLen, Duration ttl) {
    return guarded(() -> {
      RedisAsyncCommands<String, String> r = commands();
      List<CompletableFuture<?>> all = new ArrayList<>();
      String key = events(scope);
      long last = 0;
      Map<String, String> keys = new HashMap<>();
      for (Append a : batch) {
        HistoryEntry e = a.entry();
        XAddArgs args = new XAddArgs().id("0-" + e.offset()).maxlen(Math.max(1, maxLen)).approximateTrimming();
        all.add(r.xadd(key, args, Map.of("f", e.frame(), "t", Long.toString(e.ts()))).toCompletableFuture());
        last = e.offset();
        if (a.idempotencyKey() != null) keys.put(a.idempotencyKey(), epoch + " " + e.offset() + " " + e.ts());
      }
      all.add(r.hset(meta(scope), Map.of("epoch", epoch, "offset", Long.toString(last))).toCompletableFuture());
      all.add(r.pexpire(key, ttl.toMillis()).toCompletableFuture());
      all.add(r.pexpire(meta(scope), metaTtl.toMillis()).toCompletableFuture());
      if (!keys.isEmpty()) {
        all.add(r.hset(idem(scope), keys).toCompletableFuture());
        all.add(r.pexpire(idem(scope), metaTtl.toMillis()).toCompletableFuture());
      }
      return CompletableFuture.allOf(all.toArray(CompletableFuture[]::new));
    });
  }

  /** Drops idempotency keys that left the window. */
  public void forgetKeys(String scope, List<String> keys) {
    if (keys.isEmpty() || !isUp()) return;
    guarded(() -> commands().hdel(idem(scope), keys.toArray(String[]::new)).toCompletableFuture());
  }

  /** A new epoch for the scope: its old events are dropped and offsets restart (after an outage, or a new scope). */
  public CompletionStage<Void> startEpoch(String scope, String epoch, long offset) {
    return guarded(() -> {
      RedisAsyncCommands<String, String> r = commands();
      CompletableFuture<?> del = r.del(events(scope)).toCompletableFuture();
      CompletableFuture<?> set = r.hset(meta(scope), Map.of("epoch", epoch, "offset", Long.toString(offset))).toCompletableFuture();
      CompletableFuture<?> exp = r.pexpire(meta(scope), metaTtl.toMillis()).toCompletableFuture();
      return CompletableFuture.allOf(del, set, exp);
    });
  }

  /** Up to {@code limit} events after {@code after}, ascending. */
  public CompletionStage<List<HistoryEntry>> read(String scope, long after, int limit) {
    return guarded(() -> commands()
        .xrange(events(scope), Range.from(Range.Boundary.excluding("0-" + after), Range.Boundary.unbounded()),
            Limit.from(Math.max(1, limit)))
        .toCompletableFuture()
        .thenApply(msgs -> {
          List<HistoryEntry> out = new ArrayList<>(msgs.size());
          for (StreamMessage<String, String> m : msgs) out.add(entry(m));
          return out;
        }));
  }

  private static HistoryEntry entry(StreamMessage<String, String> m) {
    String id = m.getId();
    long offset = Long.parseLong(id.substring(id.indexOf('-') + 1));
    return new HistoryEntry(offset, Long.parseLong(m.getBody().getOrDefault("t", "0")), m.getBody().get("f"));
  }

  /** Runs a Redis call; any failure (including not being connected) completes the stage exceptionally and is counted. */
  private <T> CompletableFuture<T> guarded(java.util.function.Supplier<CompletionStage<T>> call) {
    CompletableFuture<T> f;
    try {
      f = call.get().toCompletableFuture();
    } catch (RuntimeException e) {
      f = CompletableFuture.failedFuture(e);
    }
    return f.orTimeout(timeout.toMillis() + 200, TimeUnit.MILLISECONDS).whenComplete((v, e) -> {
      if (e != null) metrics.redisErrors.inc();
    });
  }

  @Override
  public void close() {
    scheduler.shutdownNow();
    StatefulRedisConnection<String, String> c = connection;
    if (c != null) c.close();
    client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
  }
}
