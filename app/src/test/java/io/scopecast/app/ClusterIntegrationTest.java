package io.scopecast.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.testing.Tokens;
import io.scopecast.app.testing.ResumingClient;
import io.scopecast.app.testing.ApiClient;
import io.scopecast.app.testing.TestNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Down;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Three nodes (actor systems with their HTTP servers) in one JVM on loopback ports, forming one
 * cluster: clients on every node, publishes through every node, then losing a node.
 */
class ClusterIntegrationTest {
  private static final Duration WAIT = Duration.ofSeconds(60);
  private final List<TestNode> nodes = new ArrayList<>();

  private void startCluster(int n) {
    int seedPort = TestNode.freePort();
    List<String> seeds = List.of("127.0.0.1:" + seedPort);
    nodes.add(TestNode.inCluster(seedPort, seeds, "scopecast.presence.batch-interval", "100ms"));
    for (int i = 1; i < n; i++) nodes.add(TestNode.inCluster(TestNode.freePort(), seeds, "scopecast.presence.batch-interval", "100ms"));
    for (TestNode node : nodes) node.awaitMembersUp(n, WAIT);
  }

  @AfterEach
  void stopAll() {
    for (int i = nodes.size() - 1; i >= 0; i--) {
      try {
        nodes.get(i).close();
      } catch (RuntimeException ignored) {
        // already gone
      }
    }
  }

  /** Six clients of the workspace, two connected to each node. */
  private List<ResumingClient> twoClientsPerNode(String userPrefix, String workspace) {
    List<ResumingClient> clients = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      clients.add(new ResumingClient(Tokens.user(userPrefix + i, workspace), "\"workspace\":\"" + workspace + "\"")
          .connect(nodes.get(i % 3).ws("")));
    }
    return clients;
  }

  /** Publishes through the nodes in turn, retrying (with the same key) while the scope's owner moves. */
  private static JsonNode publish(List<TestNode> via, int i, String scope) {
    String body = "{\"scope\":\"" + scope + "\",\"event\":\"e\",\"payload\":{\"i\":" + i + "},\"idempotency_key\":\"k" + i + "\"}";
    for (int attempt = 0; ; attempt++) {
      TestNode node = via.get((i + attempt) % via.size());
      ApiClient.Answer a = node.api("POST", "/api/publish", body);
      if (a.status() == 200) return a.json();
      if (a.status() != 503 || attempt > 20) throw new AssertionError("publish " + i + " -> " + a.status() + " " + a.text());
    }
  }

  @Test
  void threeNodesBehaveAsOneServer() {
    startCluster(3);
    String scope = "workspace:all";
    List<ResumingClient> clients = twoClientsPerNode("u", "all");
    long last = 0;
    for (int i = 1; i <= 60; i++) last = publish(nodes, i, scope).get("offset").asLong();
    assertEquals(60, last);
    for (ResumingClient c : clients) {
      c.awaitOffset(scope, () -> 60L, WAIT);
      assertEquals(List.of(), c.violations());
      assertEquals(1, c.delivered().size(), "one epoch");
      assertEquals(60, c.delivered().values().iterator().next().size());
    }

    JsonNode info = nodes.get(2).api("GET", "/api/scopes/" + scope, null).json();
    assertEquals(6, info.get("subscribers").asInt(), "subscribers are counted on every node");
    assertEquals(3, nodes.get(0).api("GET", "/health/realtime", null).json().get("cluster").get("members").size());

    // presence and typing cross nodes too
    clients.get(0).socket().send("{\"type\":\"publish\",\"id\":\"t\",\"scope\":\"" + scope + "\",\"event\":\"typing\"}");
    JsonNode typing = clients.get(1).socket().expect(f -> "typing".equals(f.path("event").asText()), "typing", WAIT);
    assertEquals("u0", typing.get("from").asText());
    JsonNode members = nodes.get(1).api("GET", "/api/presence/" + scope, null).json().get("members");
    assertEquals(6, members.size());
  }

  @Test
  void losingTheNodeThatOwnsABusyScopeLosesNothingSilently() {
    startCluster(3);
    String scope = "workspace:busy";
    List<ResumingClient> clients = twoClientsPerNode("b", "busy");
    for (int i = 1; i <= 20; i++) publish(nodes, i, scope);
    String owner = nodes.get(0).api("GET", "/api/scopes/" + scope, null).json().get("node").asText();
    TestNode victim = nodes.stream().filter(n -> n.nodeId().equals(owner)).findFirst().orElseThrow();
    List<TestNode> survivors = nodes.stream().filter(n -> n != victim).toList();

    AtomicLong published = new AtomicLong(20);
    Cluster.get(survivors.get(0).system).manager().tell(new Down(Cluster.get(victim.system).selfMember().address()));
    for (int i = 21; i <= 60; i++) published.set(Math.max(published.get(), publish(survivors, i, scope).get("offset").asLong()));

    // clients of the dead node reconnect to a live one and resume
    for (int i = 0; i < clients.size(); i++) {
      if (nodes.get(i % 3) == victim) clients.get(i).connect(survivors.get(i % 2).ws(""));
    }
    JsonNode finalInfo = survivors.get(0).api("GET", "/api/scopes/" + scope, null).json();
    long lastOffset = finalInfo.get("offset").asLong();
    for (ResumingClient c : clients) {
      c.awaitOffset(scope, () -> lastOffset, WAIT);
      assertEquals(List.of(), c.violations(), "no gap and no duplicate except after a resync");
      assertEquals(finalInfo.get("epoch").asText(), c.position(scope).epoch());
    }
    assertTrue(clients.stream().allMatch(c -> c.resyncs() + c.notRecovered() >= 1),
        "without Redis the dead owner's history is gone: every client is told to resync");
    nodes.remove(victim);
    victim.close();
  }

  @Test
  void everyUserScopeStillDeliversAfterANodeLeavesGracefully() {
    startCluster(3);
    List<ResumingClient> clients = twoClientsPerNode("lv", "leave");
    for (int i = 0; i < clients.size(); i++) publish(nodes, 1, "user:lv" + i);
    for (int i = 0; i < clients.size(); i++) clients.get(i).awaitOffset("user:lv" + i, () -> 1L, WAIT);
    TestNode leaving = nodes.get(1);
    leaving.close();
    nodes.remove(leaving);
    for (int i = 0; i < clients.size(); i++) {
      if (clients.get(i).socket().isClosed()) clients.get(i).connect(nodes.get(i % 2).ws(""));
    }
    for (int i = 0; i < clients.size(); i++) publish(nodes, 2, "user:lv" + i);
    for (int i = 0; i < clients.size(); i++) {
      ResumingClient c = clients.get(i);
      c.awaitOffset("user:lv" + i, () -> 2L, WAIT);
      assertEquals(List.of(), c.violations());
      assertEquals(0, c.resyncs() + c.notRecovered(), c.notable().toString());
    }
  }

  @Test
  void aNodeLeavingGracefullyHandsItsScopesOverWithoutAResync() {
    startCluster(3);
    String scope = "workspace:moving";
    List<ResumingClient> clients = twoClientsPerNode("m", "moving");
    for (int i = 1; i <= 20; i++) publish(nodes, i, scope);
    String owner = nodes.get(0).api("GET", "/api/scopes/" + scope, null).json().get("node").asText();
    TestNode leaving = nodes.stream().filter(n -> n.nodeId().equals(owner)).findFirst().orElseThrow();
    List<TestNode> staying = nodes.stream().filter(n -> n != leaving).toList();

    leaving.close(); // coordinated shutdown: clients get 1001, shards are handed off, the node leaves
    nodes.remove(leaving);
    for (int i = 21; i <= 40; i++) publish(staying, i, scope);
    for (int i = 0; i < clients.size(); i++) {
      if (clients.get(i).socket().isClosed()) clients.get(i).connect(staying.get(i % 2).ws(""));
    }
    for (ResumingClient c : clients) {
      c.awaitOffset(scope, () -> 40L, WAIT);
      assertEquals(List.of(), c.violations());
      assertEquals(0, c.resyncs(), "the epoch and history moved with the scope");
      assertEquals(0, c.notRecovered());
    }
  }
}
