package io.scopecast.client;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.UUID;

/**
 * The Scopecast server API for backends, on the JDK's {@link HttpClient}:
 *
 * <pre>{@code
 * ScopecastClient scopecast = ScopecastClient.create(URI.create("http://scopecast:8080"), apiKey);
 * Published p = scopecast.publish("workspace:42", "issue:created", Map.of("id", 7));
 * }</pre>
 *
 * Every publish carries an {@code idempotency_key} (yours, or a random one), so that a publish
 * answered 503 (the scope's owner is moving) or lost on the network is retried safely: the server
 * applies it at most once. Thread-safe; share one instance.
 */
public final class ScopecastClient {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final HttpClient http;
  private final URI base;
  private final String apiKey;
  private final Duration timeout;
  private final int retries;
  private final Duration retryDelay;

  /** A publish's position in its scope. */
  public record Published(String epoch, long offset) {}

  /** One scope's outcome of a broadcast: a position, or the error for that scope. */
  public record BroadcastResult(String scope, Published published, String errorCode, String errorMessage) {
    public boolean ok() {
      return published != null;
    }
  }

  /** A durable event from history. */
  public record Event(long offset, String event, JsonNode payload, long ts) {}

  public record History(String epoch, long offset, List<Event> events) {}

  public record Member(String user, int connections, String status, String text) {}

  public record ScopeInfo(String scope, String epoch, long offset, String node, int subscribers) {}

  private ScopecastClient(Builder b) {
    this.base = URI.create(b.base.toString().replaceAll("/+$", ""));
    this.apiKey = b.apiKey;
    this.timeout = b.timeout;
    this.retries = b.retries;
    this.retryDelay = b.retryDelay;
    this.http = b.http != null ? b.http : HttpClient.newBuilder().connectTimeout(b.timeout).build();
  }

  public static ScopecastClient create(URI base, String apiKey) {
    return builder(base, apiKey).build();
  }

  public static Builder builder(URI base, String apiKey) {
    return new Builder(base, apiKey);
  }

  /** Options: request timeout (10 s), retries after 503 or a network error (3), the first retry delay (200 ms, doubling). */
  public static final class Builder {
    private final URI base;
    private final String apiKey;
    private Duration timeout = Duration.ofSeconds(10);
    private int retries = 3;
    private Duration retryDelay = Duration.ofMillis(200);
    private HttpClient http;

    private Builder(URI base, String apiKey) {
      this.base = Objects.requireNonNull(base, "base");
      this.apiKey = Objects.requireNonNull(apiKey, "apiKey");
    }

    public Builder timeout(Duration d) {
      this.timeout = d;
      return this;
    }

    public Builder retries(int n) {
      this.retries = n;
      return this;
    }

    public Builder retryDelay(Duration d) {
      this.retryDelay = d;
      return this;
    }

    public Builder httpClient(HttpClient c) {
      this.http = c;
      return this;
    }

    public ScopecastClient build() {
      return new ScopecastClient(this);
    }
  }

  // ---- publishing ----------------------------------------------------------------------------

  /** Publishes a durable event; {@code payload} is any value Jackson can write (a Map, a record, a JsonNode…). */
  public Published publish(String scope, String event, Object payload) {
    return publish(scope, event, payload, UUID.randomUUID().toString());
  }

  /** As {@link #publish(String, String, Object)} with your own idempotency key (10 minutes per scope). */
  public Published publish(String scope, String event, Object payload, String idempotencyKey) {
    ObjectNode body = JSON.createObjectNode().put("scope", scope).put("event", event);
    body.set("payload", JSON.valueToTree(payload));
    body.put("idempotency_key", idempotencyKey);
    JsonNode r = call("POST", "/api/publish", body);
    return new Published(r.get("epoch").asText(), r.get("offset").asLong());
  }

  /** Publishes one event to several scopes; one result per scope, in order. */
  public List<BroadcastResult> broadcast(List<String> scopes, String event, Object payload) {
    ObjectNode body = JSON.createObjectNode().put("event", event);
    ArrayNode list = body.putArray("scopes");
    scopes.forEach(list::add);
    body.set("payload", JSON.valueToTree(payload));
    body.put("idempotency_key", UUID.randomUUID().toString());
    List<BroadcastResult> out = new ArrayList<>();
    for (JsonNode r : call("POST", "/api/broadcast", body).get("results")) {
      String scope = r.get("scope").asText();
      if (r.has("error")) out.add(new BroadcastResult(scope, null, r.get("error").get("code").asText(), r.get("error").get("message").asText()));
      else out.add(new BroadcastResult(scope, new Published(r.get("epoch").asText(), r.get("offset").asLong()), null, null));
    }
    return out;
  }

  // ---- reading -------------------------------------------------------------------------------

  /** One publish of a {@link #batch}: {@code payload} as for {@link #publish}, the key generated when null. */
  public record BatchItem(String scope, String event, Object payload, String idempotencyKey) {
    public BatchItem(String scope, String event, Object payload) {
      this(scope, event, payload, null);
    }
  }

  /**
   * Publishes many events in one request (at most 1000): a scope gets them in the list's order.
   * One result per item, in order; an item that failed (a bad scope, or its scope did not answer)
   * has its error and may be sent again, with the same key, in a later batch.
   */
  public List<BroadcastResult> batch(List<BatchItem> items) {
    ObjectNode body = JSON.createObjectNode();
    ArrayNode list = body.putArray("items");
    for (BatchItem item : items) {
      ObjectNode o = list.addObject().put("scope", item.scope()).put("event", item.event());
      o.set("payload", JSON.valueToTree(item.payload()));
      o.put("idempotency_key", item.idempotencyKey() != null ? item.idempotencyKey() : UUID.randomUUID().toString());
    }
    List<BroadcastResult> out = new ArrayList<>(items.size());
    int i = 0;
    for (JsonNode r : call("POST", "/api/batch", body).get("results")) {
      String scope = items.get(i++).scope();
      if (r.has("error")) out.add(new BroadcastResult(scope, null, r.get("error").get("code").asText(), r.get("error").get("message").asText()));
      else out.add(new BroadcastResult(scope, new Published(r.get("epoch").asText(), r.get("offset").asLong()), null, null));
    }
    return out;
  }

  /** Up to {@code limit} (1..1000) events after {@code since} still in the scope's history. */
  public History history(String scope, long since, int limit) {
    JsonNode r = call("GET", "/api/history/" + encode(scope) + "?since=" + since + "&limit=" + limit, null);
    List<Event> events = new ArrayList<>();
    for (JsonNode e : r.get("events")) {
      events.add(new Event(e.get("offset").asLong(), e.get("event").asText(), e.get("payload"), e.get("ts").asLong()));
    }
    return new History(r.get("epoch").asText(), r.get("offset").asLong(), events);
  }

  public List<Member> presence(String scope) {
    List<Member> out = new ArrayList<>();
    for (JsonNode m : call("GET", "/api/presence/" + encode(scope), null).get("members")) {
      out.add(new Member(m.get("user").asText(), m.get("connections").asInt(), m.get("status").asText(), m.get("text").asText()));
    }
    return out;
  }

  public ScopeInfo scope(String scope) {
    JsonNode r = call("GET", "/api/scopes/" + encode(scope), null);
    return new ScopeInfo(r.get("scope").asText(), r.get("epoch").asText(), r.get("offset").asLong(), r.get("node").asText(),
        r.get("subscribers").asInt());
  }

  // ---- kicking -------------------------------------------------------------------------------

  /** Closes every connection of {@code user} on every node (4003, no reconnect); returns how many. */
  public int disconnect(String user) {
    return disconnect(user, 4003, "disconnected by the server", false);
  }

  public int disconnect(String user, int code, String reason, boolean reconnect) {
    ObjectNode body = JSON.createObjectNode().put("user", user).put("code", code).put("reason", reason).put("reconnect", reconnect);
    return call("POST", "/api/disconnect", body).get("connections").asInt();
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  private static String encode(String scope) {
    return URLEncoder.encode(scope, StandardCharsets.UTF_8).replace("+", "%20");
  }

  /**
   * One API call; 503 and network errors are retried (the same body, so the same idempotency
   * key), everything else is answered at once.
   */
  private JsonNode call(String method, String path, JsonNode body) {
    String payload;
    try {
      payload = body == null ? null : JSON.writeValueAsString(body);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("the payload cannot be written as JSON", e);
    }
    HttpRequest request = HttpRequest.newBuilder(URI.create(base + path))
        .timeout(timeout)
        .header("Authorization", "Bearer " + apiKey)
        .header("Content-Type", "application/json")
        .method(method, payload == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(payload))
        .build();
    ScopecastException last = null;
    for (int attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) pause(retryDelay.multipliedBy(1L << Math.min(attempt - 1, 10)));
      try {
        HttpResponse<String> r = http.send(request, HttpResponse.BodyHandlers.ofString());
        JsonNode json = r.body().isEmpty() ? JSON.createObjectNode() : JSON.readTree(r.body());
        if (r.statusCode() == 200) return json;
        last = new ScopecastException(r.statusCode(), json.path("error").path("code").asText("http_" + r.statusCode()),
            json.path("error").path("message").asText(r.body()));
        if (r.statusCode() != 503) throw last;
      } catch (IOException e) {
        last = new ScopecastException(0, "network", e.toString(), e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new ScopecastException(0, "interrupted", "interrupted", e);
      }
    }
    throw last;
  }

  private static void pause(Duration d) {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ScopecastException(0, "interrupted", "interrupted", e);
    }
  }
}
