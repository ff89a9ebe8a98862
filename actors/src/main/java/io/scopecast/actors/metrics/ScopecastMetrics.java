package io.scopecast.actors.metrics;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The node's metrics (§10, §13.14) in a Prometheus registry of its own, so that several nodes in
 * one JVM (tests) keep separate counts. Label values that come from users (event names) are
 * bounded: beyond {@link #MAX_EVENT_LABELS} distinct names the rest are counted as "other".
 */
public final class ScopecastMetrics {
  static final int MAX_EVENT_LABELS = 200;

  private final PrometheusRegistry registry = new PrometheusRegistry();
  private final Set<String> eventLabels = ConcurrentHashMap.newKeySet();

  public final Gauge connectionsActive = Gauge.builder().name("scopecast_connections_active")
      .help("WebSocket connections open now").register(registry);
  public final Counter connectionsOpened = Counter.builder().name("scopecast_connections_opened_total")
      .help("WebSocket connections accepted").register(registry);
  public final Counter connectionsClosed = Counter.builder().name("scopecast_connections_closed_total")
      .help("WebSocket connections ended").register(registry);
  public final Counter slowConsumerEvictions = Counter.builder().name("scopecast_slow_consumer_evictions_total")
      .help("Connections closed with 4008 because their outbound buffer was full").register(registry);
  public final Counter framesSent = Counter.builder().name("scopecast_frames_sent_total")
      .help("Frames written to WebSocket connections").register(registry);
  public final Counter framesDropped = Counter.builder().name("scopecast_frames_dropped_total")
      .help("Frames not sent: ephemeral events shed under pressure, frames queued for an evicted client")
      .register(registry);
  private final Counter eventsPublished = Counter.builder().name("scopecast_events_published_total")
      .help("Durable events sequenced by scopes owned by this node, by event name").labelNames("event")
      .register(registry);
  public final Counter subscribes = Counter.builder().name("scopecast_subscribes_total")
      .help("Subscriptions accepted, by scope type").labelNames("type").register(registry);
  public final Counter subscribeDenials = Counter.builder().name("scopecast_subscribe_denials_total")
      .help("Subscriptions refused by authorization, by scope type").labelNames("type").register(registry);
  public final Counter resumes = Counter.builder().name("scopecast_resumes_total")
      .help("Subscriptions with since/resume, by result").labelNames("result").register(registry);
  public final Histogram publishToSend = Histogram.builder().name("scopecast_publish_to_send_seconds")
      .help("Time from an event's publish to its frame being written to a client")
      .classicOnly()
      .classicUpperBounds(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
      .register(registry);
  public final Gauge redisUp = Gauge.builder().name("scopecast_redis_up")
      .help("1 when Redis is configured and reachable, else 0").register(registry);
  public final Counter redisErrors = Counter.builder().name("scopecast_redis_errors_total")
      .help("Redis commands, probes and reconnects that failed or timed out").register(registry);
  public final Counter redisUnwrittenEvents = Counter.builder().name("scopecast_redis_unwritten_events_total")
      .help("Durable events kept in memory only: their Redis write failed, or was skipped while Redis was down")
      .register(registry);
  public final Counter startupOverflows = Counter.builder().name("scopecast_scope_start_overflows_total")
      .help("Messages a starting scope could not hold (publishes answered unavailable, subscribes retried)")
      .register(registry);
  public final Counter writeQueueRefusals = Counter.builder().name("scopecast_scope_write_queue_refusals_total")
      .help("Publishes answered unavailable because the scope's queue behind its durable write was full")
      .register(registry);
  public final Counter clientEvents = Counter.builder().name("scopecast_client_events_total")
      .help("Client events (§7) accepted and fanned out").register(registry);
  public final Counter rateLimited = Counter.builder().name("scopecast_rate_limited_total")
      .help("Client publishes refused with rate_limited").register(registry);
  public final Counter floodDisconnects = Counter.builder().name("scopecast_flood_disconnects_total")
      .help("Connections closed with 4029 (too many frames or errors)").register(registry);
  public final Counter subscriptionsPending = Counter.builder().name("scopecast_subscriptions_pending_total")
      .help("Subscriptions reported pending because the scope's owner did not answer within api.timeout").register(registry);
  public final Counter resyncs = Counter.builder().name("scopecast_resyncs_total")
      .help("resync frames sent to clients").register(registry);
  public final Counter kicks = Counter.builder().name("scopecast_kicks_total")
      .help("Connections closed by POST /api/disconnect").register(registry);
  public final Gauge presenceMembers = Gauge.builder().name("scopecast_presence_members")
      .help("Users present in the presence scopes owned by this node").register(registry);
  public final Counter hookRequests = Counter.builder().name("scopecast_auth_hook_requests_total")
      .help("Authorization hook decisions, by result (allow, deny, error, timeout, cache_allow, cache_deny)")
      .labelNames("result").register(registry);
  public final Histogram hookLatency = Histogram.builder().name("scopecast_auth_hook_seconds")
      .help("Authorization hook round trip time").classicOnly()
      .classicUpperBounds(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
      .register(registry);
  public final Gauge scopesActive = Gauge.builder().name("scopecast_scopes_active")
      .help("Scope entities running on this node").register(registry);

  public ScopecastMetrics() {
    redisUp.set(0);
    for (String r : new String[] {"recovered", "not_recovered"}) resumes.labelValues(r);
  }

  public PrometheusRegistry registry() {
    return registry;
  }

  public void eventPublished(String eventName) {
    String label = eventName;
    if (!eventLabels.contains(label)) {
      if (eventLabels.size() >= MAX_EVENT_LABELS) label = "other";
      else eventLabels.add(label);
    }
    eventsPublished.labelValues(label).inc();
  }

  public void resume(boolean recovered) {
    resumes.labelValues(recovered ? "recovered" : "not_recovered").inc();
  }

  /** A few headline values for {@code /health/realtime}. */
  public Map<String, Object> snapshot() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("connections_active", (long) connectionsActive.get());
    m.put("connections_opened", (long) connectionsOpened.get());
    m.put("connections_closed", (long) connectionsClosed.get());
    m.put("slow_consumer_evictions", (long) slowConsumerEvictions.get());
    m.put("frames_sent", (long) framesSent.get());
    m.put("frames_dropped", (long) framesDropped.get());
    m.put("events_published", sum(eventsPublished));
    m.put("subscribes", sum(subscribes));
    m.put("subscribe_denials", sum(subscribeDenials));
    m.put("resumes_recovered", (long) resumes.labelValues("recovered").get());
    m.put("resumes_not_recovered", (long) resumes.labelValues("not_recovered").get());
    m.put("resyncs", (long) resyncs.get());
    m.put("scopes_active", (long) scopesActive.get());
    m.put("presence_members", (long) presenceMembers.get());
    m.put("publish_to_send_count", publishToSend.collect().getDataPoints().stream().mapToLong(d -> d.getCount()).sum());
    m.put("redis_errors", (long) redisErrors.get());
    m.put("redis_unwritten_events", (long) redisUnwrittenEvents.get());
    return m;
  }

  private static long sum(Counter c) {
    return (long) c.collect().getDataPoints().stream().mapToDouble(d -> d.getValue()).sum();
  }
}
