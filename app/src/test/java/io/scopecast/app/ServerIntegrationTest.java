package io.scopecast.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.testing.TestSettings;
import io.scopecast.actors.testing.Tokens;
import io.scopecast.app.testing.ApiClient;
import io.scopecast.app.testing.ResumingClient;
import io.scopecast.app.testing.TestNode;
import io.scopecast.app.testing.WsClient;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.LongStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The real server (actor system, cluster, pekko-http) with real WebSocket clients. */
class ServerIntegrationTest {
  private static TestNode node;

  @BeforeAll
  static void start() {
    node = TestNode.start(
        "scopecast.connection.outbound-buffer", 16,
        "scopecast.connection.max-frame-bytes", 4096,
        "scopecast.connection.max-subscriptions", 3,
        "scopecast.connection.flood.max-errors", 5,
        "scopecast.history.size", 50);
  }

  @AfterAll
  static void stop() {
    node.close();
  }

  private static List<Long> range(long from, long to) {
    return LongStream.rangeClosed(from, to).boxed().toList();
  }

  // ---- authentication before the upgrade ------------------------------------------------------

  @Test
  void badTokensAreRefusedWith401AndUngrantedWorkspacesWith403BeforeUpgrading() {
    assertEquals(401, WsClient.open(node.ws(""), Map.of("Authorization", "Bearer not.a.jwt")).status());
    String foreign = Tokens.user("another-secret", "u1", Instant.now().plusSeconds(60));
    assertEquals(401, WsClient.open(node.ws("token=" + foreign), Map.of()).status());
    String expired = Tokens.user(TestSettings.SECRET, "u1", Instant.now().minusSeconds(120));
    assertEquals(401, WsClient.open(node.ws("token=" + expired), Map.of()).status());
    assertEquals(403, WsClient.open(node.ws("workspace=2&token=" + Tokens.user("u1", "1")), Map.of()).status());
    WsClient ok = WsClient.open(node.ws("workspace=1&token=" + Tokens.user("u1", "1")), Map.of()).client();
    ok.send("{\"type\":\"connect\"}");
    JsonNode connected = ok.expect("connected");
    assertEquals(List.of("user:u1", "workspace:1"), connected.get("scopes").findValuesAsText("scope"));
    ok.close();
  }

  // ---- delivery ------------------------------------------------------------------------------

  @Test
  void everyClientReceivesEveryPublishedEventInOrder() {
    List<WsClient> clients = new ArrayList<>();
    for (int i = 0; i < 4; i++) clients.add(WsClient.connect(node.ws(""), Tokens.user("reader" + i, "order"), "\"workspace\":\"order\""));
    for (int i = 1; i <= 100; i++) node.publish("workspace:order", "issue:updated", "{\"n\":" + i + "}");
    for (WsClient c : clients) {
      c.awaitOffsets("workspace:order", 100, Duration.ofSeconds(20));
      assertEquals(range(1, 100), c.offsets("workspace:order"));
      c.close();
    }
  }

  @Test
  void aClientThatReconnectsWithResumeGetsEveryMissedEventExactlyOnce() {
    WsClient first = WsClient.connect(node.ws(""), Tokens.user("resumer", "res"), "\"workspace\":\"res\"");
    JsonNode last = null;
    for (int i = 1; i <= 10; i++) last = node.publish("workspace:res", "e", "{}");
    first.awaitOffsets("workspace:res", 10, Duration.ofSeconds(10));
    first.abort();
    for (int i = 11; i <= 25; i++) node.publish("workspace:res", "e", "{}");

    String epoch = last.get("epoch").asText();
    WsClient second = WsClient.connect(node.ws(""), Tokens.user("resumer", "res"),
        "\"workspace\":\"res\",\"resume\":{\"workspace:res\":{\"epoch\":\"" + epoch + "\",\"offset\":10}}");
    JsonNode entry = second.seen().get(0).get("scopes").get(1);
    assertEquals("workspace:res", entry.get("scope").asText());
    assertTrue(entry.get("recovered").asBoolean());
    node.publish("workspace:res", "e", "{}");
    second.awaitOffsets("workspace:res", 16, Duration.ofSeconds(10));
    assertEquals(range(11, 26), second.offsets("workspace:res"));
    second.close();
  }

  @Test
  void aClientEvictedAsSlowThatResumesAtOnceCatchesUpWhilePublishingGoesOn() throws Exception {
    String scope = "workspace:evicted";
    ResumingClient client = new ResumingClient(Tokens.user("eve", "evicted"), "\"workspace\":\"evicted\"").connect(node.ws(""));
    client.socket().stopReading();
    String payload = "\"" + "x".repeat(16 * 1024) + "\"";
    double evictionsBefore = evictions();
    AtomicLong last = new AtomicLong();
    AtomicBoolean publishing = new AtomicBoolean(true);
    Thread publisher = new Thread(() -> { // 200 publishes/s, ~3 MB/s, throughout
      long start = System.nanoTime();
      for (long i = 0; publishing.get(); i++) {
        LockSupport.parkNanos(start + i * 5_000_000L - System.nanoTime());
        last.set(node.publish(scope, "bulk", payload).get("offset").asLong());
      }
    });
    publisher.start();
    try {
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (evictions() == evictionsBefore) { // history (50 events) can no longer supply what it misses
        assertTrue(System.nanoTime() < deadline, "the client that reads nothing was never evicted");
        LockSupport.parkNanos(Duration.ofMillis(100).toNanos()); // polling the server's metrics
      }
      client.socket().resumeReading(); // it reads what reached it, then the socket ends (4008, or cut after close-grace)
      client.socket().awaitClose(Duration.ofSeconds(30));
      client.connect(node.ws("")); // at once, with resume, while publishing goes on
      client.awaitOffset(scope, last::get, Duration.ofSeconds(60));
    } finally {
      publishing.set(false);
      publisher.join();
    }
    client.awaitOffset(scope, last::get, Duration.ofSeconds(30));
    assertEquals(List.of(), client.violations(), "no gap or duplicate beyond what resync announced");
    assertFalse(client.socket().isClosed(), "once caught up it is not evicted again");
    client.socket().close();
  }

  private static double evictions() {
    return node.api("GET", "/health/realtime", null).json().get("metrics").get("slow_consumer_evictions").asDouble();
  }

  @Test
  void aSlowClientIsDisconnectedWith4008WhileAFastOneReceivesEverything() {
    WsClient fast = WsClient.connect(node.ws(""), Tokens.user("fast", "slowfast"), "\"workspace\":\"slowfast\"");
    WsClient slow = WsClient.connect(node.ws(""), Tokens.user("slow", "slowfast"), "\"workspace\":\"slowfast\"");
    slow.stopReading();
    String payload = "\"" + "x".repeat(16 * 1024) + "\"";
    int n = 600; // ~10 MB: more than the socket buffers between the server and a client that reads nothing
    for (int i = 1; i <= n; i++) node.publish("workspace:slowfast", "bulk", payload);
    fast.awaitOffsets("workspace:slowfast", n, Duration.ofSeconds(60));
    assertEquals(range(1, n), fast.offsets("workspace:slowfast"));
    assertFalse(fast.isClosed());

    JsonNode metrics = node.api("GET", "/health/realtime", null).json().get("metrics");
    assertTrue(metrics.get("slow_consumer_evictions").asLong() >= 1, "the eviction is counted: " + metrics);
    slow.resumeReading(); // what it finds: a prefix of the events without a gap, then the end of the connection
    slow.awaitClose(Duration.ofSeconds(30));
    List<Long> got = slow.offsets("workspace:slowfast");
    assertTrue(got.size() < n, "the slow client was cut off");
    assertEquals(range(1, got.size()), got, "no gap in what it did receive");
    slow.seen().stream().filter(f -> f.path("type").asText().equals("disconnect"))
        .forEach(d -> assertEquals(4008, d.get("code").asInt()));
    fast.close();
  }

  // ---- bad input on the socket ---------------------------------------------------------------

  @Test
  void badFramesAreAnsweredWithErrorsAndTheConnectionStaysUp() {
    WsClient c = WsClient.connect(node.ws(""), Tokens.user("badinput"), "");
    c.send("{not json");
    assertEquals("bad_request", c.expect("error").get("code").asText());
    assertEquals("bad_request", c.request("{\"type\":\"frobnicate\",\"id\":\"f\"}", "f").get("code").asText());
    assertEquals("bad_scope", c.request("{\"type\":\"subscribe\",\"id\":\"s\",\"scope\":\"Not A Scope\"}", "s").get("code").asText());
    assertEquals("unknown_type", c.request("{\"type\":\"subscribe\",\"id\":\"t\",\"scope\":\"nosuch:1\"}", "t").get("code").asText());
    assertEquals("bad_request", c.request("{\"type\":\"subscribe\",\"id\":\"m\"}", "m").get("code").asText());
    assertEquals("pong", c.request("{\"type\":\"ping\",\"id\":\"alive\"}", "alive").get("type").asText());
    c.close();
  }

  @Test
  void aFrameOverMaxFrameBytesIsDisconnectedWith1009() {
    WsClient c = WsClient.connect(node.ws(""), Tokens.user("big"), "");
    c.send("{\"type\":\"ping\",\"pad\":\"" + "x".repeat(5000) + "\"}");
    assertFalse(c.expectDisconnect(1009, Duration.ofSeconds(10)).get("reconnect").asBoolean());
  }

  @Test
  void tooManyErrorsAreDisconnectedWith4029() {
    WsClient c = WsClient.connect(node.ws(""), Tokens.user("noisy"), "");
    for (int i = 0; i < 6; i++) c.send("{\"type\":\"nope\"}");
    assertTrue(c.expectDisconnect(4029, Duration.ofSeconds(10)).get("reconnect").asBoolean());
  }

  @Test
  void subscriptionsBeyondMaxSubscriptionsAreRefusedWithLimitExceeded() {
    WsClient c = WsClient.connect(node.ws(""), Tokens.user("many", "m1"), "\"workspace\":\"m1\"");
    assertEquals("subscribed", c.request("{\"type\":\"subscribe\",\"id\":\"1\",\"scope\":\"task:m1\",\"token\":\""
        + Tokens.scope("many", "task:m1") + "\"}", "1").get("type").asText());
    assertEquals("limit_exceeded", c.request("{\"type\":\"subscribe\",\"id\":\"2\",\"scope\":\"task:m2\",\"token\":\""
        + Tokens.scope("many", "task:m2") + "\"}", "2").get("code").asText());
    c.close();
  }

  // ---- the server API ------------------------------------------------------------------------

  @Test
  void theApiRefusesBadInputWithJsonErrorsAndNeverA500() {
    assertEquals(401, node.call("POST", "/api/publish", "{}", null).status());
    assertEquals(401, node.call("POST", "/api/publish", "{}", "wrong").status());
    for (String body : List.of("", "{", "[]", "42", "{\"scope\":\"task:1\"}", "{\"scope\":\"bad scope\",\"event\":\"e\"}",
        "{\"scope\":\"task:1\",\"event\":\"no spaces\"}", "{\"scope\":1,\"event\":\"e\"}")) {
      ApiClient.Answer a = node.api("POST", "/api/publish", body);
      assertEquals(400, a.status(), body + " -> " + a.text());
      assertNotNull(a.json().get("error").get("code"), a.text());
    }
    assertEquals("unknown_type", node.api("POST", "/api/publish", "{\"scope\":\"zzz:1\",\"event\":\"e\"}").json()
        .get("error").get("code").asText());
    assertEquals(400, node.api("GET", "/api/history/task:1?limit=0", null).status());
    assertEquals(400, node.api("GET", "/api/history/task:1?since=-1", null).status());
    assertEquals(400, node.api("POST", "/api/disconnect", "{\"user\":\"u\",\"code\":2000}").status());
    assertEquals(404, node.api("GET", "/api/nothing", null).status());
    assertEquals(405, node.api("GET", "/api/publish", null).status());
  }

  @Test
  void aPublishIsAnsweredAlikeWhetherItsBodyArrivesWholeOrInChunks() {
    // a body with a Content-Length takes the publish fast path, a chunked one the routes
    ApiClient api = node.client();
    String ok = "{\"scope\":\"task:chunks\",\"event\":\"e\",\"payload\":{\"n\":1.50}}";
    String big = "{\"scope\":\"task:chunks\",\"event\":\"e\",\"payload\":\"" + "x".repeat(1 << 20) + "\"}";
    record Row(String body, String key, int status, String code) {}
    for (Row row : List.of(
        new Row(ok, TestSettings.API_KEY, 200, null),
        new Row(ok, "wrong", 401, "unauthorized"),
        new Row("{\"scope\":\"task:chunks\",\"event\":\"e\",\"payload\":\"\\ud800\"}", TestSettings.API_KEY, 400, "bad_request"),
        new Row("[1]", TestSettings.API_KEY, 400, "bad_request"),
        new Row(big, TestSettings.API_KEY, 413, "too_large"))) {
      for (ApiClient.Answer a : List.of(api.call("POST", "/api/publish", row.body(), row.key()),
          api.callChunked("POST", "/api/publish", row.body(), row.key()))) {
        assertEquals(row.status(), a.status(), a.text());
        if (row.code() != null) assertEquals(row.code(), a.json().get("error").get("code").asText(), a.text());
        else assertTrue(a.json().get("offset").asLong() > 0, a.text());
      }
    }
    JsonNode h = node.api("GET", "/api/history/task:chunks", null).json();
    assertEquals(List.of("1", "2"), h.get("events").findValuesAsText("offset"), "both publishes happened, once each");
    assertTrue(node.api("GET", "/api/history/task:chunks", null).text().contains("\"payload\":{\"n\":1.50}"));
  }

  @Test
  void aBatchRunsItsItemsInOrderPerScopeAndAnswersEachItem() {
    StringBuilder items = new StringBuilder();
    for (int i = 1; i <= 40; i++) {
      if (items.length() > 0) items.append(',');
      items.append("{\"scope\":\"task:batch").append(i % 2).append("\",\"event\":\"e\",\"payload\":{\"i\":").append(i).append(",\"f\":1e2}}");
    }
    items.append(",{\"scope\":\"bad scope\",\"event\":\"e\"}")                       // 41: its own error
        .append(",{\"scope\":\"task:batch0\",\"event\":\"no spaces\"}")                  // 42
        .append(",{\"scopes\":[\"task:batch0\",\"zzz:1\"],\"event\":\"b\",\"payload\":7}") // 43: a broadcast item
        .append(",{\"scope\":\"task:batch1\",\"event\":\"k\",\"idempotency_key\":\"once\"}")  // 44
        .append(",{\"scope\":\"task:batch1\",\"event\":\"k\",\"idempotency_key\":\"once\"}")  // 45: the same key
        .append(",42");                                                                              // 46: not an object
    ApiClient.Answer a = node.api("POST", "/api/batch", "{\"items\":[" + items + "]}");
    assertEquals(200, a.status(), a.text());
    JsonNode results = a.json().get("results");
    assertEquals(46, results.size());
    List<Long> evens = new ArrayList<>();
    List<Long> odds = new ArrayList<>();
    for (int i = 1; i <= 40; i++) (i % 2 == 0 ? evens : odds).add(results.get(i - 1).get("offset").asLong());
    assertEquals(LongStream.rangeClosed(1, 20).boxed().toList(), evens, "item order is offset order in task:batch0");
    assertEquals(LongStream.rangeClosed(1, 20).boxed().toList(), odds, "and in task:batch1");
    assertEquals("bad_scope", results.get(40).get("error").get("code").asText());
    assertEquals("bad_request", results.get(41).get("error").get("code").asText());
    JsonNode broadcast = results.get(42).get("results");
    assertEquals(21, broadcast.get(0).get("offset").asLong());
    assertEquals("unknown_type", broadcast.get(1).get("error").get("code").asText());
    assertEquals(results.get(43).get("offset"), results.get(44).get("offset"), "a key repeated in a batch applies once");
    assertEquals("bad_request", results.get(45).get("error").get("code").asText());
    String history = node.api("GET", "/api/history/task:batch0?limit=1000", null).text();
    for (int i = 2; i <= 40; i += 2) assertTrue(history.contains("\"payload\":{\"i\":" + i + ",\"f\":1e2}"), history);
    assertEquals(21, node.api("GET", "/api/scopes/task:batch0", null).json().get("offset").asLong());
    assertEquals(21, node.api("GET", "/api/scopes/task:batch1", null).json().get("offset").asLong(), "20 + the keyed one");
  }

  @Test
  void aSubscriberGetsABatchsEventsLiveInOrder() {
    WsClient live = WsClient.connect(node.ws(""), Tokens.user("bea", "wb"), "\"workspace\":\"wb\"");
    StringBuilder items = new StringBuilder();
    for (int i = 1; i <= 30; i++) {
      items.append(i == 1 ? "" : ",").append("{\"scope\":\"workspace:wb\",\"event\":\"e\",\"payload\":").append(i).append('}');
    }
    assertEquals(200, node.api("POST", "/api/batch", "{\"items\":[" + items + "]}").status());
    live.awaitOffsets("workspace:wb", 30, Duration.ofSeconds(10));
    assertEquals(range(1, 30), live.offsets("workspace:wb"));
    live.close();
  }

  @Test
  void aBatchIsBoundedAndNeedsTheApiKey() {
    String item = "{\"scope\":\"task:bounds\",\"event\":\"e\"}";
    assertEquals(401, node.call("POST", "/api/batch", "{\"items\":[" + item + "]}", null).status());
    assertEquals(401, node.call("POST", "/api/batch", "{\"items\":[" + item + "]}", "wrong").status());
    String tooMany = String.join(",", java.util.Collections.nCopies(1001, item));
    for (String body : List.of("{}", "{\"items\":[]}", "{\"items\":{}}", "{\"items\":[" + tooMany + "]}", "[" + item + "]",
        "{\"items\":[{\"scope\":\"task:bounds\",\"event\":\"e\",\"payload\":\"\\ud800\"}]}")) {
      ApiClient.Answer a = node.api("POST", "/api/batch", body);
      assertEquals(400, a.status(), a.text());
      assertEquals("bad_request", a.json().get("error").get("code").asText(), a.text());
    }
    String many = "{\"scopes\":[" + String.join(",", java.util.Collections.nCopies(1000, "\"task:bounds\"")) + "],\"event\":\"e\"}";
    ApiClient.Answer overPublishes = node.api("POST", "/api/batch",
        "{\"items\":[" + String.join(",", java.util.Collections.nCopies(11, many)) + "]}");
    assertEquals(400, overPublishes.status(), "11,000 publishes in one batch exceed 10,000");
    String big = "{\"items\":[{\"scope\":\"task:bounds\",\"event\":\"e\",\"payload\":\"" + "x".repeat(1 << 20) + "\"}]}";
    assertEquals(413, node.api("POST", "/api/batch", big).status());
    assertEquals(0, node.api("GET", "/api/scopes/task:bounds", null).json().get("offset").asLong(), "nothing of a refused batch ran");
  }

  @Test
  void historyAndScopeInfoAgreeWithPublishes() {
    JsonNode p = null;
    for (int i = 1; i <= 5; i++) p = node.publish("task:hist", "task:updated", "{\"i\":" + i + "}");
    JsonNode h = node.api("GET", "/api/history/task:hist?since=2&limit=2", null).json();
    assertEquals(p.get("epoch").asText(), h.get("epoch").asText());
    assertEquals(5, h.get("offset").asLong());
    assertEquals(List.of("3", "4"), h.get("events").findValuesAsText("offset"));
    assertEquals(3, h.get("events").get(0).get("payload").get("i").asInt());
    JsonNode info = node.api("GET", "/api/scopes/task:hist", null).json();
    assertEquals(5, info.get("offset").asLong());
    assertEquals(0, info.get("subscribers").asInt());
  }

  @Test
  void payloadsTravelVerbatimLiveReplayedThroughHistoryAndFromClients() {
    String scope = "workspace:verbatim";
    String payload = "{\"price\":123456789012345678.5,\"exp\":1e2,\"frac\":0.10,\"zeroes\":[1.0,2.50,3e0],"
        + "\"z\":\"\\u00e9\",\"a\":-0.0,\"big\":" + "9".repeat(2000) + "}";
    WsClient live = WsClient.connect(node.ws(""), Tokens.user("vera", "verbatim"), "\"workspace\":\"verbatim\"");
    JsonNode published = node.api("POST", "/api/publish",
        "{\"scope\":\"" + scope + "\",\"event\":\"quote\",\"payload\": " + payload + " }").json();
    long offset = published.get("offset").asLong();
    live.awaitOffsets(scope, 1, Duration.ofSeconds(10));
    assertTrue(live.rawFrames().stream().anyMatch(f -> f.contains("\"payload\":" + payload + ",")), "live: " + live.rawFrames());

    WsClient replayed = WsClient.connect(node.ws(""), Tokens.user("rita", "verbatim"), "\"workspace\":\"verbatim\","
        + "\"resume\":{\"" + scope + "\":{\"epoch\":\"" + published.get("epoch").asText() + "\",\"offset\":" + (offset - 1) + "}}");
    replayed.awaitOffsets(scope, 1, Duration.ofSeconds(10));
    assertTrue(replayed.rawFrames().stream().anyMatch(f -> f.contains("\"payload\":" + payload + ",")), "replayed");

    String history = node.api("GET", "/api/history/" + scope + "?since=" + (offset - 1), null).text();
    assertTrue(history.contains("\"payload\":" + payload + ","), history);

    String typing = "{\"at\":1.50,\"n\":2E3}";
    replayed.send("{\"type\":\"publish\",\"id\":1,\"scope\":\"" + scope + "\",\"event\":\"typing\",\"payload\":" + typing + "}");
    live.expect(f -> "typing".equals(f.path("event").asText()), "the client event", Duration.ofSeconds(10));
    assertTrue(live.rawFrames().stream().anyMatch(f -> f.contains("\"payload\":" + typing)), "client event: " + live.rawFrames());

    ApiClient.Answer lone = node.api("POST", "/api/publish",
        "{\"scope\":\"" + scope + "\",\"event\":\"quote\",\"payload\":{\"s\":\"\\ud800\"}}");
    assertEquals(400, lone.status());
    assertTrue(lone.json().get("error").get("message").asText().contains("payload"), lone.text());
    replayed.send("{\"type\":\"publish\",\"id\":2,\"scope\":\"" + scope + "\",\"event\":\"typing\",\"payload\":\"\\udfff\"}");
    JsonNode refused = replayed.expect(f -> "error".equals(f.path("type").asText()), "the refusal", Duration.ofSeconds(10));
    assertEquals(2, refused.get("id").asInt(), "the id is echoed");
    assertTrue(refused.toString().contains("lone surrogate"), refused.toString());
    live.close();
    replayed.close();
  }

  @Test
  void kickClosesEveryConnectionOfTheUserWith4003() {
    WsClient a = WsClient.connect(node.ws(""), Tokens.user("kicked"), "");
    WsClient b = WsClient.connect(node.ws(""), Tokens.user("kicked"), "");
    WsClient other = WsClient.connect(node.ws(""), Tokens.user("stays"), "");
    ApiClient.Answer r = node.api("POST", "/api/disconnect", "{\"user\":\"kicked\"}");
    assertEquals(200, r.status(), r.text());
    assertEquals(2, r.json().get("connections").asInt());
    assertFalse(a.expectDisconnect(4003, Duration.ofSeconds(10)).get("reconnect").asBoolean());
    b.expectDisconnect(4003, Duration.ofSeconds(10));
    assertEquals("pong", other.request("{\"type\":\"ping\",\"id\":\"x\"}", "x").get("type").asText());
    other.close();
  }
}
