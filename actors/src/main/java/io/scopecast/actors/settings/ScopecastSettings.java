package io.scopecast.actors.settings;

import com.typesafe.config.Config;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import io.scopecast.actors.protocol.ScopeId;

/**
 * The {@code scopecast} configuration, read once at start into typed records. Actors receive the
 * parts they need; nothing else calls {@code config.getString}.
 */
public record ScopecastSettings(
    String nodeId,
    Http http,
    Auth auth,
    Connection connection,
    ClientEvents clientEvents,
    Presence presence,
    Map<String, ScopeType> scopeTypes,
    ScopeLifecycle scope,
    Api api,
    Redis redis,
    Duration shutdownTimeout,
    Duration drainPeriod,
    boolean demo) {

  public record Http(String host, int port, long maxBodyBytes) {}

  public record Auth(
      String jwtSecret,
      String jwtPublicKey,
      String apiKey,
      Duration clockSkew,
      String hookUrl,
      Hook hook) {
    public boolean hasHook() {
      return !hookUrl.isEmpty();
    }
  }

  public record Hook(Duration timeout, Duration allowTtl, Duration denyTtl, int cacheSize, int maxInFlight) {}

  public record Connection(
      Duration handshakeTimeout,
      Duration heartbeatInterval,
      Duration heartbeatTimeout,
      int outboundBuffer,
      long outboundBufferBytes,
      int maxFrameBytes,
      int maxSubscriptions,
      Duration closeGrace,
      int replayPage,
      Flood flood) {}

  public record Flood(double framesPerSecond, int burst, int maxErrors, Duration errorWindow) {}

  public record ClientEvents(double ratePerSecond, int burst) {}

  public record Presence(Duration batchInterval, int maxMembersDetailed) {}

  /** One configured scope type: whether it tracks presence, its history bounds, its client events. */
  public record ScopeType(String name, boolean presence, int historySize, Duration historyTtl, List<String> clientEvents) {}

  /**
   * {@code startBuffer}: messages a scope holds while it starts (its previous state is being found);
   * {@code writeQueueBytes}: publishes (in UTF-8 bytes) that may wait while a durable write is in flight.
   */
  public record ScopeLifecycle(Duration passivateAfter, Duration idempotencyWindow, int idempotencyMaxKeys, int startBuffer,
      long writeQueueBytes) {}

  public record Api(Duration timeout, int historyDefaultLimit, int historyMaxLimit) {}

  public record Redis(String url, Duration timeout, String keyPrefix, Duration metaTtl, Duration probeInterval) {
    public boolean enabled() {
      return !url.isEmpty();
    }
  }

  public boolean knowsType(String type) {
    return scopeTypes.containsKey(type);
  }

  public ScopeType type(String type) {
    ScopeType t = scopeTypes.get(type);
    if (t == null) throw new IllegalArgumentException("unknown scope type " + type);
    return t;
  }

  /** Reads {@code scopecast} from a full configuration; {@code nodeIdFallback} is host:cluster-port. */
  public static ScopecastSettings fromConfig(Config root, String nodeIdFallback) {
    Config c = root.getConfig("scopecast");
    String nodeId = c.getString("node-id").isBlank() ? nodeIdFallback : c.getString("node-id").trim();

    Config h = c.getConfig("http");
    Http http = new Http(h.getString("host"), h.getInt("port"), h.getBytes("max-body-bytes"));

    Config a = c.getConfig("auth");
    Config hk = a.getConfig("hook");
    Auth auth = new Auth(
        a.getString("jwt-secret"),
        a.getString("jwt-public-key"),
        a.getString("api-key"),
        a.getDuration("clock-skew"),
        a.getString("hook-url").trim(),
        new Hook(hk.getDuration("timeout"), hk.getDuration("allow-ttl"), hk.getDuration("deny-ttl"),
            hk.getInt("cache-size"), hk.getInt("max-in-flight")));

    Config cn = c.getConfig("connection");
    Config fl = cn.getConfig("flood");
    Connection connection = new Connection(
        cn.getDuration("handshake-timeout"),
        cn.getDuration("heartbeat-interval"),
        cn.getDuration("heartbeat-timeout"),
        positive(cn, "outbound-buffer"),
        positiveBytes(cn, "outbound-buffer-bytes"),
        positive(cn, "max-frame-bytes"),
        positive(cn, "max-subscriptions"),
        cn.getDuration("close-grace"),
        positive(cn, "replay-page"),
        new Flood(fl.getDouble("frames-per-second"), fl.getInt("burst"), fl.getInt("max-errors"),
            fl.getDuration("error-window")));

    Config ce = c.getConfig("client-events");
    ClientEvents clientEvents = new ClientEvents(ce.getDouble("rate-per-second"), ce.getInt("burst"));

    Config pr = c.getConfig("presence");
    Presence presence = new Presence(pr.getDuration("batch-interval"), pr.getInt("max-members-detailed"));

    int historySize = c.getInt("history.size");
    Duration historyTtl = c.getDuration("history.ttl");
    List<String> defaultClientEvents = c.getStringList("default-client-events");
    Map<String, ScopeType> types = new LinkedHashMap<>();
    Config st = c.getConfig("scope-types");
    for (String name : st.root().keySet()) {
      if (!ScopeId.isValidType(name)) {
        throw new IllegalArgumentException("scopecast.scope-types: '" + name + "' is not a valid scope type name");
      }
      Config t = st.getConfig(name);
      types.put(name, new ScopeType(
          name,
          t.hasPath("presence") && t.getBoolean("presence"),
          t.hasPath("history-size") ? t.getInt("history-size") : historySize,
          t.hasPath("history-ttl") ? t.getDuration("history-ttl") : historyTtl,
          t.hasPath("client-events") ? t.getStringList("client-events") : defaultClientEvents));
    }

    Config sc = c.getConfig("scope");
    ScopeLifecycle scope = new ScopeLifecycle(sc.getDuration("passivate-after"),
        sc.getDuration("idempotency-window"), sc.getInt("idempotency-max-keys"), sc.getInt("start-buffer"),
        sc.getBytes("write-queue-bytes"));

    Config ap = c.getConfig("api");
    Api api = new Api(ap.getDuration("timeout"), ap.getInt("history-default-limit"), ap.getInt("history-max-limit"));

    Config r = c.getConfig("redis");
    Redis redis = new Redis(r.getString("url").trim(), r.getDuration("timeout"), r.getString("key-prefix"),
        r.getDuration("meta-ttl"), r.getDuration("probe-interval"));

    return new ScopecastSettings(nodeId, http, auth, connection, clientEvents, presence, Map.copyOf(types),
        scope, api, redis, c.getDuration("shutdown-timeout"), c.getDuration("drain-period"), c.getBoolean("demo.enabled"));
  }

  private static int positive(Config c, String key) {
    int v = c.getInt(key);
    if (v <= 0) throw new IllegalArgumentException("scopecast.connection." + key + " must be positive, is " + v);
    return v;
  }

  private static long positiveBytes(Config c, String key) {
    long v = c.getBytes(key);
    if (v <= 0) throw new IllegalArgumentException("scopecast.connection." + key + " must be positive, is " + v);
    return v;
  }

  /** Returns a copy with another auth section (used when the app generates a secret or key). */
  public ScopecastSettings withAuth(Auth newAuth) {
    return new ScopecastSettings(nodeId, http, newAuth, connection, clientEvents, presence, scopeTypes, scope,
        api, redis, shutdownTimeout, drainPeriod, demo);
  }
}
