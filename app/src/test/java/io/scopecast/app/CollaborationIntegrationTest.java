package io.scopecast.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.testing.Tokens;
import io.scopecast.app.testing.ApiClient;
import io.scopecast.app.testing.TestNode;
import io.scopecast.app.testing.WsClient;
import io.scopecast.http.testing.HookBackend;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Presence, typing, the authorization hook and idempotent publishing through a real server and real sockets. */
class CollaborationIntegrationTest {
  private static HookBackend backend;
  private static TestNode node;

  @BeforeAll
  static void start() {
    backend = new HookBackend();
    node = TestNode.start(
        "scopecast.auth.hook-url", backend.url(),
        "scopecast.auth.hook.timeout", "1s",
        "scopecast.auth.hook.deny-ttl", "1ms",
        "scopecast.presence.batch-interval", "200ms");
  }

  @AfterAll
  static void stop() {
    node.close();
    backend.close();
  }

  private static WsClient join(String user, String workspace) {
    return WsClient.connect(node.ws(""), Tokens.user(user, workspace), "\"workspace\":\"" + workspace + "\"");
  }

  private static JsonNode subscribe(WsClient c, String scope, String id) {
    return c.request("{\"type\":\"subscribe\",\"id\":\"" + id + "\",\"scope\":\"" + scope + "\"}", id);
  }

  @Test
  void theHookDecidesScopesThatNoClaimCovers() {
    WsClient alice = join("alice", "w1");
    WsClient bob = join("bob", "w1");
    WsClient carol = join("carol", "w2");
    assertEquals("subscribed", subscribe(alice, "chat:c1", "1").get("type").asText(), "the chat's creator");
    assertEquals("forbidden", subscribe(bob, "chat:c1", "2").get("code").asText(), "a peer");
    assertEquals("subscribed", subscribe(bob, "task:t1", "3").get("type").asText(), "a workspace member");
    assertEquals("forbidden", subscribe(carol, "task:t1", "4").get("code").asText(), "another workspace");
    assertEquals("forbidden", subscribe(bob, "task:t2", "5").get("code").asText(), "a chat's task, not the creator");
    assertEquals("subscribed", subscribe(alice, "task:t2", "6").get("type").asText());
    WsClient mallory = join("mallory", "w1");
    assertEquals("forbidden", subscribe(mallory, "task:t1", "7").get("code").asText(), "no session at the app");

    backend.mode(HookBackend.Mode.FAIL_500);
    try {
      assertEquals("unavailable", subscribe(carol, "chat:c2", "8").get("code").asText(), "a failing hook lets no one in");
    } finally {
      backend.mode(HookBackend.Mode.NORMAL);
    }
    assertEquals("subscribed", subscribe(carol, "chat:c2", "9").get("type").asText());
    for (WsClient c : List.of(alice, bob, carol, mallory)) c.close();
  }

  @Test
  void twoPeopleSeeEachOtherJoinTypeGoAwayAndLeave() {
    WsClient ann = join("ann", "studio");
    WsClient ben = join("ben", "studio");
    assertEquals("ben", ann.expect("presence.join").get("user").asText());

    JsonNode members = ben.request("{\"type\":\"presence\",\"id\":\"p\",\"scope\":\"workspace:studio\"}", "p").get("members");
    assertEquals(List.of("ann", "ben"), members.findValuesAsText("user"));

    ann.send("{\"type\":\"publish\",\"id\":\"t\",\"scope\":\"workspace:studio\",\"event\":\"typing\",\"payload\":{\"on\":true}}");
    JsonNode typing = ben.expect(f -> "event".equals(f.path("type").asText()) && "typing".equals(f.path("event").asText()),
        "typing", Duration.ofSeconds(5));
    assertEquals("ann", typing.get("from").asText());
    assertFalse(typing.has("offset"));

    ann.send("{\"type\":\"status\",\"id\":\"s\",\"status\":\"away\",\"text\":\"lunch\"}");
    JsonNode update = ben.expect("presence.update");
    assertEquals("away", update.get("status").asText());
    JsonNode viaApi = node.api("GET", "/api/presence/workspace:studio", null).json();
    assertEquals("away", viaApi.get("members").get(0).get("status").asText());

    WsClient annSecondTab = join("ann", "studio");
    annSecondTab.request("{\"type\":\"ping\",\"id\":\"x\"}", "x");
    ann.close();
    assertEquals(2, node.api("GET", "/api/presence/workspace:studio", null).json().get("members").size());
    annSecondTab.abort(); // the last tab goes away without a goodbye
    JsonNode leave = ben.expect("presence.leave");
    assertEquals("ann", leave.get("user").asText());
    assertTrue(ann.seen().stream().noneMatch(f -> "typing".equals(f.path("event").asText())), "typing is not echoed");
    ben.close();
  }

  @Test
  void publishingTwiceWithOneKeyDeliversOnce() {
    WsClient c = join("idem", "idem");
    String body = "{\"scope\":\"workspace:idem\",\"event\":\"e\",\"payload\":1,\"idempotency_key\":\"k-1\"}";
    JsonNode first = node.api("POST", "/api/publish", body).json();
    JsonNode second = node.api("POST", "/api/publish", body).json();
    assertEquals(first, second);
    node.publish("workspace:idem", "e", "2");
    c.awaitOffsets("workspace:idem", 2, Duration.ofSeconds(5));
    assertEquals(List.of(1L, 2L), c.offsets("workspace:idem"));
    c.close();
  }
}
