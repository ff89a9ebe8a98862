package io.scopecast.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.testing.RedisServer;
import io.scopecast.actors.testing.Tokens;
import io.scopecast.app.testing.ResumingClient;
import io.scopecast.app.testing.TestNode;
import java.time.Duration;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The real server with a real redis-server started by the test: restarts and outages. */
class RedisIntegrationTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static RedisServer redis;

  @BeforeAll
  static void startRedis() {
    RedisServer.requireInstalled();
    redis = RedisServer.start();
  }

  @AfterAll
  static void stopRedis() {
    if (redis != null) redis.close();
  }

  private static TestNode node() {
    return TestNode.start("scopecast.redis.url", redis.url());
  }

  private static List<Long> range(long from, long to) {
    return LongStream.rangeClosed(from, to).boxed().toList();
  }

  private static void awaitRedis(TestNode node, String state) {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (!state.equals(node.api("GET", "/health/realtime", null).json().get("redis").get("state").asText())) {
      if (System.nanoTime() > deadline) throw new AssertionError("redis never " + state);
      try {
        Thread.sleep(50); // the node's view of Redis is only visible through its health endpoint
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
    }
  }

  @Test
  void afterTheWholeServerRestartedClientsResumeWithEveryMissedEventOnce() {
    String scope = "workspace:restart";
    TestNode first = node();
    awaitRedis(first, "up");
    ResumingClient client = new ResumingClient(Tokens.user("r1", "restart"), "\"workspace\":\"restart\"").connect(first.ws(""));
    String epoch = null;
    for (int i = 1; i <= 10; i++) epoch = first.publish(scope, "e", "{\"i\":" + i + "}").get("epoch").asText();
    client.awaitOffset(scope, () -> 10L, WAIT);
    client.socket().abort();
    for (int i = 11; i <= 15; i++) first.publish(scope, "e", "{\"i\":" + i + "}");
    first.close();

    TestNode second = node();
    try {
      awaitRedis(second, "up");
      JsonNode p = second.publish(scope, "e", "{\"i\":16}");
      assertEquals(epoch, p.get("epoch").asText(), "the epoch survived the restart");
      assertEquals(16, p.get("offset").asLong(), "offsets continue");
      client.connect(second.ws(""));
      JsonNode entry = client.socket().seen().get(0).get("scopes").get(1);
      assertTrue(entry.get("recovered").asBoolean(), entry.toString());
      assertEquals(epoch, entry.get("epoch").asText());
      client.awaitOffset(scope, () -> 16L, WAIT);
      assertEquals(List.of(), client.violations());
      assertEquals(range(11, 16), client.socket().offsets(scope), "every missed offset, once, in order");
      assertEquals(0, client.resyncs());
    } finally {
      second.close();
    }
  }

  @Test
  void whileRedisIsDownDeliveryGoesOnAndAClientThatMissedTheOutageIsToldToRefetch() {
    String scope = "workspace:outage";
    TestNode node = node();
    try {
      awaitRedis(node, "up");
      ResumingClient stays = new ResumingClient(Tokens.user("o1", "outage"), "\"workspace\":\"outage\"").connect(node.ws(""));
      ResumingClient leaves = new ResumingClient(Tokens.user("o2", "outage"), "\"workspace\":\"outage\"").connect(node.ws(""));
      for (int i = 1; i <= 5; i++) node.publish(scope, "e", "{}");
      leaves.awaitOffset(scope, () -> 5L, WAIT);
      leaves.socket().abort();

      redis.kill();
      for (int i = 6; i <= 10; i++) assertEquals(i, node.publish(scope, "e", "{}").get("offset").asLong());
      stays.awaitOffset(scope, () -> 10L, WAIT);
      JsonNode health = node.api("GET", "/health/realtime", null).json();
      assertEquals("down", health.get("redis").get("state").asText());
      assertTrue(node.api("GET", "/metrics", null).text().contains("scopecast_redis_up 0.0"));

      redis.restart();
      awaitRedis(node, "up");
      JsonNode resync = stays.socket().expect("resync");
      assertEquals(scope, resync.get("scope").asText());
      assertEquals(0, resync.get("offset").asLong());
      JsonNode next = node.publish(scope, "e", "{}");
      assertEquals(resync.get("epoch").asText(), next.get("epoch").asText());
      assertEquals(1, next.get("offset").asLong());
      stays.awaitOffset(scope, () -> 1L, WAIT);
      assertEquals(List.of(), stays.violations(), "no gap: the new epoch was announced by resync");

      String oldEpoch = leaves.position(scope).epoch();
      leaves.connect(node.ws(""));
      JsonNode entry = leaves.socket().seen().get(0).get("scopes").get(1);
      assertFalse(entry.get("recovered").asBoolean(), "never a history with a hole: " + entry);
      assertNotEquals(oldEpoch, entry.get("epoch").asText());
      assertEquals(List.of(), leaves.violations());
    } finally {
      node.close();
      if (!redisAnswers()) redis.restart();
    }
  }

  private static boolean redisAnswers() {
    try (java.net.Socket s = new java.net.Socket("127.0.0.1", redis.port())) {
      return true;
    } catch (java.io.IOException e) {
      return false;
    }
  }

  @Test
  void theHistoryApiReadsOlderEventsFromRedis() {
    TestNode node = TestNode.start("scopecast.redis.url", redis.url(), "scopecast.history.size", 5);
    try {
      awaitRedis(node, "up");
      for (int i = 1; i <= 8; i++) node.publish("task:api", "e", "{\"i\":" + i + "}");
      JsonNode h = node.api("GET", "/api/history/task:api?since=0&limit=10", null).json();
      List<String> offsets = h.get("events").findValuesAsText("offset");
      assertTrue(offsets.size() >= 5 && offsets.get(offsets.size() - 1).equals("8"), offsets.toString());
    } finally {
      node.close();
    }
  }
}
