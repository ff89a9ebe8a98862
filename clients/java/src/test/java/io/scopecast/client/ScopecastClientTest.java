package io.scopecast.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import io.scopecast.actors.testing.TestSettings;
import io.scopecast.actors.testing.Tokens;
import io.scopecast.app.testing.TestNode;
import io.scopecast.app.testing.WsClient;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The Java client against a real server, and its retries against a server that answers 503. */
class ScopecastClientTest {
  private static TestNode node;
  private static ScopecastClient client;

  @BeforeAll
  static void start() {
    node = TestNode.start();
    client = ScopecastClient.create(URI.create("http://127.0.0.1:" + node.httpPort()), TestSettings.API_KEY);
  }

  @AfterAll
  static void stop() {
    node.close();
  }

  record Issue(int id, String title) {}

  @Test
  void aBackendPublishesInThreeLinesAndSubscribersReceiveIt() {
    WsClient subscriber = WsClient.connect(node.ws(""), Tokens.user("reader", "j1"), "\"workspace\":\"j1\"");
    ScopecastClient.Published p = client.publish("workspace:j1", "issue:created", new Issue(7, "hello"));
    assertEquals(1, p.offset());
    var event = subscriber.expect("event");
    assertEquals("issue:created", event.get("event").asText());
    assertEquals(7, event.get("payload").get("id").asInt());
    subscriber.close();
  }

  @Test
  void aBatchPublishesManyEventsInOneRequestInOrder() {
    List<ScopecastClient.BatchItem> items = new ArrayList<>();
    for (int i = 1; i <= 10; i++) items.add(new ScopecastClient.BatchItem("task:jb", "e", Map.of("i", i)));
    items.add(new ScopecastClient.BatchItem("Bad Scope", "e", 1));
    items.add(new ScopecastClient.BatchItem("task:jb", "e", Map.of("i", 99), "same"));
    items.add(new ScopecastClient.BatchItem("task:jb", "e", Map.of("i", 99), "same"));
    List<ScopecastClient.BroadcastResult> r = client.batch(items);
    assertEquals(13, r.size());
    for (int i = 0; i < 10; i++) assertEquals(i + 1, r.get(i).published().offset());
    assertEquals("bad_scope", r.get(10).errorCode());
    assertEquals(r.get(11).published(), r.get(12).published(), "one key, one event");
    assertEquals(11, client.scope("task:jb").offset());
  }

  @Test
  void broadcastHistoryPresenceScopeAndDisconnect() {
    List<ScopecastClient.BroadcastResult> r = client.broadcast(List.of("task:b1", "task:b2", "Bad Scope"), "e", Map.of("x", 1));
    assertTrue(r.get(0).ok());
    assertTrue(r.get(1).ok());
    assertFalse(r.get(2).ok());
    assertEquals("bad_scope", r.get(2).errorCode());

    for (int i = 0; i < 3; i++) client.publish("task:h", "e", Map.of("i", i));
    ScopecastClient.History h = client.history("task:h", 1, 10);
    assertEquals(3, h.offset());
    assertEquals(List.of(2L, 3L), h.events().stream().map(ScopecastClient.Event::offset).toList());
    assertEquals(2, h.events().get(1).payload().get("i").asInt());

    WsClient ann = WsClient.connect(node.ws(""), Tokens.user("ann", "p1"), "\"workspace\":\"p1\"");
    assertEquals(List.of("ann"), client.presence("workspace:p1").stream().map(ScopecastClient.Member::user).toList());
    assertEquals(1, client.scope("workspace:p1").subscribers());
    assertEquals(1, client.disconnect("ann"));
    assertEquals(4003, ann.expectDisconnect(4003, Duration.ofSeconds(10)).get("code").asInt());
  }

  @Test
  void badInputIsATypedErrorAndIsNotRetried() {
    ScopecastException e = assertThrows(ScopecastException.class, () -> client.publish("nosuchtype:1", "e", 1));
    assertEquals(400, e.status());
    assertEquals("unknown_type", e.code());
    ScopecastClient wrongKey = ScopecastClient.create(URI.create("http://127.0.0.1:" + node.httpPort()), "wrong");
    assertEquals(401, assertThrows(ScopecastException.class, () -> wrongKey.publish("task:1", "e", 1)).status());
  }

  @Test
  void a503IsRetriedWithTheSameIdempotencyKey() throws IOException {
    List<String> bodies = new ArrayList<>();
    HttpServer flaky = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    flaky.createContext("/api/publish", ex -> {
      bodies.add(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
      boolean ok = bodies.size() == 3;
      byte[] answer = (ok ? "{\"epoch\":\"E\",\"offset\":5}" : "{\"error\":{\"code\":\"unavailable\",\"message\":\"moving\"}}")
          .getBytes(StandardCharsets.UTF_8);
      ex.sendResponseHeaders(ok ? 200 : 503, answer.length);
      ex.getResponseBody().write(answer);
      ex.close();
    });
    flaky.start();
    try {
      ScopecastClient c = ScopecastClient.builder(URI.create("http://127.0.0.1:" + flaky.getAddress().getPort()), "k")
          .retryDelay(Duration.ofMillis(10)).build();
      assertEquals(new ScopecastClient.Published("E", 5), c.publish("task:1", "e", Map.of()));
      assertEquals(3, bodies.size());
      String key = bodies.get(0).replaceAll(".*\"idempotency_key\":\"([^\"]+)\".*", "$1");
      assertTrue(bodies.stream().allMatch(b -> b.contains("\"idempotency_key\":\"" + key + "\"")), bodies.toString());
    } finally {
      flaky.stop(0);
    }
  }
}
