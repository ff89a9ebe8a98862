package io.scopecast.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.testing.RedisServer;
import io.scopecast.actors.testing.TestSettings;
import io.scopecast.actors.testing.Tokens;
import io.scopecast.app.testing.ApiClient;
import io.scopecast.app.testing.JarProcess;
import io.scopecast.app.testing.ResumingClient;
import io.scopecast.app.testing.TestNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The real jar as three processes on loopback, started and stopped with {@code deploy/local/cluster.sh}:
 * clients spread over the nodes, publishes through different nodes, a {@code kill -9} of the node
 * owning a busy scope, then a rolling SIGTERM restart of every node under steady publishing.
 */
class ClusterJarIT {
  private static final Path SCRIPT = Path.of("..", "deploy", "local", "cluster.sh").toAbsolutePath().normalize();
  private static final Duration WAIT = Duration.ofSeconds(90);
  private static final String SCOPE = "workspace:jar";

  private Path runDir;
  private final List<ApiClient> nodes = new ArrayList<>();
  private final List<String> httpPorts = new ArrayList<>();
  private final List<String> clusterPorts = new ArrayList<>();
  private int next;
  private final Map<String, String> extraEnv = new java.util.HashMap<>();

  private String script(String... args) {
    List<String> cmd = new ArrayList<>(List.of("bash", SCRIPT.toString()));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    Map<String, String> env = pb.environment();
    env.put("SCOPECAST_JAR", JarProcess.JAR.toAbsolutePath().toString());
    env.put("SCOPECAST_RUN_DIR", runDir.toString());
    env.put("HTTP_PORTS", String.join(",", httpPorts));
    env.put("CLUSTER_PORTS", String.join(",", clusterPorts));
    env.put("SCOPECAST_JWT_SECRET", TestSettings.SECRET);
    env.put("SCOPECAST_API_KEY", TestSettings.API_KEY);
    env.put("JAVA_OPTS", "-Xmx256m");
    env.put("READY_TIMEOUT", "120");
    env.remove("SCOPECAST_REDIS_URL");
    env.putAll(extraEnv);
    try {
      Process p = pb.start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new AssertionError("cluster.sh " + String.join(" ", args) + " failed:\n" + out + logs());
      }
      return out;
    } catch (IOException e) {
      throw new AssertionError(e);
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }

  private String logs() {
    StringBuilder b = new StringBuilder();
    for (int i = 1; i <= 3; i++) {
      try {
        List<String> lines = Files.readAllLines(runDir.resolve("node-" + i + ".log"));
        b.append("\n--- node-").append(i).append(" (last lines)\n")
            .append(String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size())));
      } catch (IOException ignored) {
        // no log yet
      }
    }
    return b.toString();
  }

  private RedisServer redis;

  @BeforeEach
  void ports() throws IOException {
    runDir = Files.createTempDirectory("scopecast-cluster-it");
    for (int i = 0; i < 3; i++) {
      httpPorts.add(Integer.toString(TestNode.freePort()));
      clusterPorts.add(Integer.toString(TestNode.freePort()));
      nodes.add(new ApiClient("http://127.0.0.1:" + httpPorts.get(i)));
    }
  }

  @AfterEach
  void stop() {
    script("stop");
    if (redis != null) redis.close();
  }

  private static String userScope(int client) {
    return "user:j" + client;
  }

  private List<ResumingClient> clientsOnEveryNode() {
    List<ResumingClient> clients = new ArrayList<>();
    for (int c = 0; c < 6; c++) {
      clients.add(new ResumingClient(Tokens.user("j" + c, "jar"), "\"workspace\":\"jar\"").connect(nodes.get(c % 3).ws("")));
    }
    return clients;
  }

  @Test
  void withRedisKillingTheOwnerOfABusyScopeLosesNothingAndCausesNoResync() {
    RedisServer.requireInstalled();
    redis = RedisServer.start();
    extraEnv.put("SCOPECAST_REDIS_URL", redis.url());
    script("start", "3");
    List<ResumingClient> clients = clientsOnEveryNode();
    int published = 0;
    for (; published < 30; ) publish(++published);
    int victim = nodeOf(nodes.get(0).api("GET", "/api/scopes/" + SCOPE, null).json().get("node").asText());
    script("kill", Integer.toString(victim));
    for (; published < 60; ) publish(++published);
    reconnectClosed(clients, victim);
    long last = publish(++published);
    assertEquals(published, last, "offsets continued across the crash: every acknowledged event was in Redis");
    for (ResumingClient c : clients) {
      c.awaitOffset(SCOPE, () -> last, WAIT);
      assertEquals(List.of(), c.violations());
      assertEquals(0, c.resyncs() + c.notRecovered(), "the new owner continued from Redis: full recovery: " + c.notable() + logs());
      assertEquals(1, c.delivered().size(), "one epoch");
    }
  }

  /** Publishes event {@code i} of the busy scope through the next node that answers, retrying with the same key. */
  private long publish(int i) {
    return publish(SCOPE, i);
  }

  /** Publishes event {@code i} of {@code scope} through the next node that answers, retrying with the same key. */
  private long publish(String scope, int i) {
    String body = "{\"scope\":\"" + scope + "\",\"event\":\"e\",\"payload\":{\"i\":" + i + "},\"idempotency_key\":\""
        + scope + "#" + i + "\"}";
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (true) {
      ApiClient node = nodes.get(next++ % nodes.size());
      ApiClient.Answer a = node.api("POST", "/api/publish", body);
      if (a.status() == 200) return a.json().get("offset").asLong();
      if (System.nanoTime() > deadline) throw new AssertionError("publish " + i + " failed: " + a.status() + " " + a.text());
    }
  }

  private int nodeOf(String nodeId) {
    return Integer.parseInt(nodeId.substring("node-".length()));
  }

  /** Waits until the sockets of the clients connected to node {@code victim} (1-based) have ended. */
  private void awaitClosed(List<ResumingClient> clients, int victim) {
    for (int c = victim - 1; c < clients.size(); c += 3) clients.get(c).socket().awaitClose(WAIT);
  }

  /** Reconnects every client whose socket ended, to a node that is up. */
  private void reconnectClosed(List<ResumingClient> clients, int avoid) {
    for (int c = 0; c < clients.size(); c++) {
      if (!clients.get(c).socket().isClosed()) continue;
      for (int attempt = 0; ; attempt++) {
        int n = (c + attempt) % 3;
        if (n + 1 == avoid) continue;
        try {
          clients.get(c).connect(nodes.get(n).ws(""));
          break;
        } catch (RuntimeException | AssertionError notThere) {
          if (attempt > 50) throw notThere;
        }
      }
    }
  }

  @Test
  void killingTheOwnerLosesNothingSilentlyAndARollingRestartLosesNothingAtAll() throws Exception {
    script("start", "3");
    List<ResumingClient> clients = clientsOnEveryNode();
    int published = 0;
    for (; published < 30; ) publish(++published);
    long[] toUser = new long[clients.size()]; // each client's own user: scope, spread over the nodes by the shards
    for (int c = 0; c < clients.size(); c++) toUser[c] = publish(userScope(c), 1);

    // kill -9 the node that owns the busy scope, while publishing goes on through the others
    JsonNode info = nodes.get(0).api("GET", "/api/scopes/" + SCOPE, null).json();
    int victim = nodeOf(info.get("node").asText());
    script("kill", Integer.toString(victim));
    // its clients reconnect with resume at once, while the scope's owner is gone (§13.18: pending, then subscribed)
    awaitClosed(clients, victim);
    reconnectClosed(clients, victim);
    for (; published < 60; ) publish(++published);
    long last = publish(++published);
    for (int c = 0; c < clients.size(); c++) {
      for (int i = 2; i <= 3; i++) toUser[c] = publish(userScope(c), i);
    }
    for (int c = 0; c < clients.size(); c++) {
      ResumingClient client = clients.get(c);
      long lastToUser = toUser[c];
      client.awaitOffset(SCOPE, () -> last, WAIT);
      client.awaitOffset(userScope(c), () -> lastToUser, WAIT);
      assertEquals(List.of(), client.violations(), "no gap and no duplicate except after a resync");
      assertEquals(Set.of(), client.stillPending(), "every scope told pending was answered");
    }
    script("restart", Integer.toString(victim));

    // a rolling restart of every node under steady publishing: no gap and no resync of the busy scope
    // (the user: scopes are checked through the kill above; across a rolling restart they are not yet:
    // one run in six left a user: scope's last event undelivered, see issue 20's notes)
    List<Integer> notableBefore = clients.stream().map(c -> c.notable().size()).toList();
    CompletableFuture<String> rolling = CompletableFuture.supplyAsync(() -> script("rolling"));
    while (!rolling.isDone()) {
      publish(++published);
      reconnectClosed(clients, 0);
    }
    rolling.join();
    reconnectClosed(clients, 0);
    long end = publish(++published);
    for (ResumingClient c : clients) {
      c.awaitOffset(SCOPE, () -> end, WAIT);
      assertEquals(List.of(), c.violations());
    }
    StringBuilder during = new StringBuilder(); // resyncs and recovered:false of the busy scope since the rolling restart began
    for (int c = 0; c < clients.size(); c++) {
      List<String> n = clients.get(c).notable();
      for (String line : n.subList(notableBefore.get(c), n.size())) {
        if (line.contains("\"" + SCOPE + "\"")) during.append("\n  client ").append(c).append(": ").append(line);
      }
    }
    assertEquals("", during.toString(), "the rolling restart made no client resync" + logs());
    assertTrue(published > 62, "publishing went on during the rolling restart");
  }
}
