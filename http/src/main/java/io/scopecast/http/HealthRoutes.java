package io.scopecast.http;

import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.protocol.Json;
import io.scopecast.actors.scope.ScopeEntity;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.sharding.ShardRegion;
import org.apache.pekko.cluster.sharding.typed.GetShardRegionState;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * {@code /health/live}, {@code /health/ready}, {@code /health/realtime} and {@code /metrics}: no API
 * key needed (§13.14).
 */
public final class HealthRoutes extends AllDirectives {
  /** Cluster role carrying a node's id, so every node can name the others (§13.16). */
  public static final String NODE_ROLE_PREFIX = "node:";
  private static final ContentType PROMETHEUS = ContentTypes.parse(PrometheusTextFormatWriter.CONTENT_TYPE);

  private final ActorSystem<?> system;
  private final String nodeId;
  private final ScopecastMetrics metrics;
  private final Supplier<String> redisState;
  private final PrometheusTextFormatWriter prometheus = PrometheusTextFormatWriter.create();

  /** @param redisState "up", "down" or "disabled" */
  public HealthRoutes(ActorSystem<?> system, String nodeId, ScopecastMetrics metrics, Supplier<String> redisState) {
    this.system = system;
    this.nodeId = nodeId;
    this.metrics = metrics;
    this.redisState = redisState;
  }

  public Route route() {
    return concat(
        path(segment("health").slash("live"), () -> get(() -> complete(JsonResponses.ok("{\"status\":\"live\"}")))),
        path(segment("health").slash("ready"), () -> get(this::ready)),
        path(segment("health").slash("realtime"), () -> get(this::realtime)),
        path("metrics", () -> get(this::metrics)));
  }

  private static org.apache.pekko.http.javadsl.server.PathMatcher0 segment(String s) {
    return org.apache.pekko.http.javadsl.server.PathMatchers.segment(s);
  }

  /** Ready once this node is an Up member of the cluster. */
  public boolean isReady() {
    return Cluster.get(system).selfMember().status() == MemberStatus.up();
  }

  private Route ready() {
    return isReady()
        ? complete(JsonResponses.ok("{\"status\":\"ready\"}"))
        : complete(JsonResponses.json(StatusCodes.SERVICE_UNAVAILABLE, "{\"status\":\"joining\"}"));
  }

  private Route realtime() {
    CompletionStage<ShardRegion.CurrentShardRegionState> shards = AskPattern.ask(
        ClusterSharding.get(system).shardState(),
        replyTo -> new GetShardRegionState(ScopeEntity.TYPE_KEY, replyTo),
        Duration.ofSeconds(2), system.scheduler());
    return onComplete(shards, r -> complete(JsonResponses.ok(realtimeJson(r.isSuccess() ? r.get().getShards().size() : -1))));
  }

  private String realtimeJson(int shardCount) {
    Cluster cluster = Cluster.get(system);
    Map<String, Object> snapshot = metrics.snapshot();
    return Json.object(g -> {
      g.writeStringField("node", nodeId);
      g.writeBooleanField("ready", isReady());
      g.writeObjectFieldStart("cluster");
      g.writeArrayFieldStart("members");
      for (Member m : cluster.state().getMembers()) {
        g.writeStartObject();
        g.writeStringField("node", nodeIdOf(m));
        g.writeStringField("address", m.address().toString());
        g.writeStringField("status", m.status().toString().toLowerCase());
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeArrayFieldStart("unreachable");
      for (Member m : cluster.state().getUnreachable()) g.writeString(nodeIdOf(m));
      g.writeEndArray();
      g.writeNumberField("shards", shardCount);
      g.writeEndObject();
      g.writeObjectFieldStart("redis");
      g.writeStringField("state", redisState.get());
      g.writeEndObject();
      g.writeObjectFieldStart("metrics");
      for (Map.Entry<String, Object> e : snapshot.entrySet()) g.writeObjectField(e.getKey(), e.getValue());
      g.writeEndObject();
    });
  }

  static String nodeIdOf(Member m) {
    for (String role : m.getRoles()) {
      if (role.startsWith(NODE_ROLE_PREFIX)) return role.substring(NODE_ROLE_PREFIX.length());
    }
    return m.address().host().getOrElse(() -> "?") + ":" + m.address().port().getOrElse(() -> 0);
  }

  private Route metrics() {
    ByteArrayOutputStream out = new ByteArrayOutputStream(16 * 1024);
    try {
      prometheus.write(out, metrics.registry().scrape());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    HttpResponse r = HttpResponse.create().withEntity(HttpEntities.create(PROMETHEUS, out.toByteArray()));
    return complete(r);
  }
}
