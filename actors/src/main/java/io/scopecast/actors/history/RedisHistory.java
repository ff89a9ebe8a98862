package io.scopecast.actors.history;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.Limit;
import io.lettuce.core.Range;
import io.lettuce.core.RedisChannelHandler;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisConnectionStateListener;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.async.RedisAsyncCommands;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.event.connection.ReconnectFailedEvent;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.Delay;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.settings.ScopecastSettings;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
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
 * <p>Whether Redis is up is decided by a separate probe connection (a PING every
 * {@code scopecast.redis.probe-interval}), so a large pipelined batch on the data connection never
 * looks like an outage. It is down at once when a write fails ({@link #writeFailed()}) or the data
 * connection drops, and up again only after a probe succeeds. Commands time out after
 * {@code scopecast.redis.timeout} and fail at once while disconnected; both connections reconnect
 * by themselves, at most {@link #RECONNECT_AT_MOST} apart. Failed commands, probes and reconnects
 * are counted in {@code scopecast_redis_errors_total}, events kept in memory only in
 * {@code scopecast_redis_unwritten_events_total}.
 *
 * <p>An append is a script that first checks the scope's epoch: a write that timed out here but
 * reaches Redis later, after a new epoch was started there, changes nothing, so Redis never holds
 * a history with a hole (§13.9).
 */
public final class RedisHistory implements DurableHistory, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(RedisHistory.class);
  static final Duration RECONNECT_AT_MOST = Duration.ofSeconds(2);

  /** KEYS: events, meta, idem. ARGV: epoch, maxlen, ttl ms, meta ttl ms, n, n × (offset, ts, frame), then (key, record) pairs. */
  private static final String APPEND = """
      local cur = redis.call('HGET', KEYS[2], 'epoch')
      if cur and cur ~= ARGV[1] then return 0 end
      local n = tonumber(ARGV[5])
      local last = 0
      for i = 0, n - 1 do
        local b = 6 + i * 3
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '0-' .. ARGV[b], 'f', ARGV[b + 2], 't', ARGV[b + 1])
        last = ARGV[b]
      end
      redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'offset', last)
      redis.call('PEXPIRE', KEYS[1], ARGV[3])
      redis.call('PEXPIRE', KEYS[2], ARGV[4])
      local k = 6 + n * 3
      if #ARGV > k then
        for j = k, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[j], ARGV[j + 1]) end
        redis.call('PEXPIRE', KEYS[3], ARGV[4])
      end
      return 1
      """;

  /** The scope's epoch in Redis is not the one written: another owner started a new one meanwhile. */
  public static final class EpochMoved extends RuntimeException {
    EpochMoved(String scope) {
      super("the epoch of " + scope + " in Redis moved on");
    }
  }

  private final ClientResources resources;
  private final RedisClient client;
  private final String prefix;
  private final Duration timeout;
  private final Duration metaTtl;
  private final ScopecastMetrics metrics;
  private final ScheduledExecutorService prober;
  private volatile StatefulRedisConnection<String, String> data;
  private StatefulRedisConnection<String, String> probe;
  private volatile boolean up;
  /** Bumped by every failed write: a probe that started before it cannot declare Redis up. */
  private final AtomicLong failures = new AtomicLong();
  private final CompletableFuture<Void> firstUp = new CompletableFuture<>();

  private RedisHistory(ScopecastSettings.Redis settings, ScopecastMetrics metrics) {
    this.resources = ClientResources.builder()
        .reconnectDelay(Delay.exponential(Duration.ofMillis(50), RECONNECT_AT_MOST, 2, TimeUnit.MILLISECONDS))
        .build();
    RedisURI uri = RedisURI.create(settings.url());
    uri.setTimeout(settings.timeout());
    this.client = RedisClient.create(resources, uri);
    client.setOptions(ClientOptions.builder()
        .autoReconnect(true)
        .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
        .socketOptions(SocketOptions.builder().connectTimeout(settings.timeout()).build())
        .timeoutOptions(TimeoutOptions.enabled(settings.timeout()))
        .build());
    this.prefix = settings.keyPrefix();
    this.timeout = settings.timeout();
    this.metaTtl = settings.metaTtl();
    this.metrics = metrics;
    this.prober = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "scopecast-redis-probe");
      t.setDaemon(true);
      return t;
    });
    resources.eventBus().get().filter(ReconnectFailedEvent.class::isInstance).subscribe(e -> metrics.redisErrors.inc());
  }

  /** Starts connecting and probing in the background: a Redis that is down does not stop the server from starting. */
  public static RedisHistory connect(ScopecastSettings.Redis settings, ScopecastMetrics metrics) {
    RedisHistory h = new RedisHistory(settings, metrics);
    long every = settings.probeInterval().toMillis();
    h.prober.scheduleWithFixedDelay(h::probe, 0, every, TimeUnit.MILLISECONDS);
    return h;
  }

  private StatefulRedisConnection<String, String> open() {
    StatefulRedisConnection<String, String> c = client.connect(StringCodec.UTF8);
    c.addListener(new RedisConnectionStateListener() {
      @Override
      public void onRedisConnected(RedisChannelHandler<?, ?> ch, SocketAddress address) {}

      @Override
      public void onRedisDisconnected(RedisChannelHandler<?, ?> ch) {
        if (ch == data) down("lost the connection");
      }
    });
    return c;
  }

  /** One PING on the probe connection (opening the connections first if needed); up only when it answers in time. */
  private void probe() {
    long failuresBefore = failures.get();
    try {
      if (probe == null) probe = open();
      probe.async().ping().toCompletableFuture().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      if (data == null) data = open();
      if (!data.isOpen()) throw new IllegalStateException("the data connection is reconnecting");
      if (failures.get() == failuresBefore) {
        if (!up) log.info("Redis is up");
        up = true;
        metrics.redisUp.set(1);
        firstUp.complete(null);
      }
    } catch (Exception e) {
      metrics.redisErrors.inc();
      if (e instanceof InterruptedException) Thread.currentThread().interrupt();
      down(e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage()));
    }
  }

  private void down(String why) {
    if (up) log.warn("Redis is down ({}); history stays in memory until it is back", why);
    up = false;
    metrics.redisUp.set(0);
  }

  @Override
  public boolean enabled() {
    return true;
  }

  @Override
  public boolean isUp() {
    StatefulRedisConnection<String, String> c = data;
    return up && c != null && c.isOpen();
  }

  @Override
  public String state() {
    return isUp() ? "up" : "down";
  }

  /** Completes once Redis has been found up for the first time. */
  public CompletionStage<Void> connected() {
    return firstUp;
  }

  @Override
  public void writeFailed() {
    failures.incrementAndGet();
    down("a write failed");
  }

  @Override
  public void notWritten(int events) {
    if (events > 0) metrics.redisUnwrittenEvents.inc(events);
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
    StatefulRedisConnection<String, String> c = data;
    if (c == null) throw new IllegalStateException("Redis is not connected");
    return c.async();
  }

  @Override
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
            if (m == null || !m.containsKey("epoch")) return Loaded.NOTHING;
            List<HistoryEntry> entries = new ArrayList<>();
            for (StreamMessage<String, String> msg : tail.toCompletableFuture().join()) entries.add(entry(msg));
            Collections.reverse(entries);
            long offset = Long.parseLong(m.getOrDefault("offset", "0"));
            if (!entries.isEmpty()) offset = Math.max(offset, entries.get(entries.size() - 1).offset());
            List<IdempotencyRecord> records = new ArrayList<>();
            keys.toCompletableFuture().join().forEach((k, val) -> {
              String[] parts = val.split(" ");
              if (parts.length == 3) records.add(new IdempotencyRecord(k, parts[0], Long.parseLong(parts[1]), Long.parseLong(parts[2])));
            });
            return new Loaded(m.get("epoch"), offset, entries, records);
          });
    });
  }

  @Override
  public CompletionStage<Void> append(String scope, String epoch, List<Append> batch, int maxLen, Duration ttl) {
    return guarded(() -> {
      List<String> args = new ArrayList<>(5 + batch.size() * 3);
      args.add(epoch);
      args.add(Integer.toString(Math.max(1, maxLen)));
      args.add(Long.toString(ttl.toMillis()));
      args.add(Long.toString(metaTtl.toMillis()));
      args.add(Integer.toString(batch.size()));
      List<String> keys = new ArrayList<>();
      for (Append a : batch) {
        HistoryEntry e = a.entry();
        args.add(Long.toString(e.offset()));
        args.add(Long.toString(e.ts()));
        args.add(e.frame());
        if (a.idempotencyKey() != null) {
          keys.add(a.idempotencyKey());
          keys.add(epoch + " " + e.offset() + " " + e.ts());
        }
      }
      args.addAll(keys);
      RedisFuture<Long> applied = commands().eval(APPEND, ScriptOutputType.INTEGER,
          new String[] {events(scope), meta(scope), idem(scope)}, args.toArray(String[]::new));
      return applied.toCompletableFuture().thenAccept(n -> {
        if (n == null || n == 0) throw new EpochMoved(scope);
      });
    });
  }

  @Override
  public void forgetKeys(String scope, List<String> keys) {
    if (keys.isEmpty() || !isUp()) return;
    guarded(() -> commands().hdel(idem(scope), keys.toArray(String[]::new)).toCompletableFuture());
  }

  @Override
  public CompletionStage<Void> startEpoch(String scope, String epoch) {
    return guarded(() -> {
      RedisAsyncCommands<String, String> r = commands();
      CompletableFuture<?> del = r.del(events(scope)).toCompletableFuture();
      CompletableFuture<?> set = r.hset(meta(scope), Map.of("epoch", epoch, "offset", "0")).toCompletableFuture();
      CompletableFuture<?> exp = r.pexpire(meta(scope), metaTtl.toMillis()).toCompletableFuture();
      return CompletableFuture.allOf(del, set, exp);
    });
  }

  @Override
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

  /** Runs a Redis call within the timeout; any failure (including not being connected) fails the stage and is counted. */
  private <T> CompletableFuture<T> guarded(Supplier<CompletionStage<T>> call) {
    CompletableFuture<T> f;
    try {
      f = call.get().toCompletableFuture();
    } catch (RuntimeException e) {
      f = CompletableFuture.failedFuture(e);
    }
    return f.orTimeout(timeout.toMillis(), TimeUnit.MILLISECONDS).whenComplete((v, e) -> {
      if (e != null) metrics.redisErrors.inc();
    });
  }

  @Override
  public void close() {
    prober.shutdownNow();
    for (StatefulRedisConnection<String, String> c : new ArrayList<>(java.util.Arrays.asList(data, probe))) {
      if (c != null) c.close();
    }
    client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
    resources.shutdown(0, 2, TimeUnit.SECONDS);
  }
}
