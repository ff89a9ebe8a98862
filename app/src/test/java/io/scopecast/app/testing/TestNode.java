package io.scopecast.app.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.scopecast.actors.testing.TestSettings;
import io.scopecast.app.Guardian;
import io.scopecast.app.NodeConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.HashSet;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Subscribe;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/** A real Scopecast node (actor system, cluster, HTTP) in the test JVM, on free loopback ports. */
public final class TestNode implements AutoCloseable {
  public final ActorSystem<Guardian.Command> system;
  public final Guardian.Node node;
  public final int clusterPort;

  private TestNode(ActorSystem<Guardian.Command> system, Guardian.Node node, int clusterPort) {
    this.system = system;
    this.node = node;
    this.clusterPort = clusterPort;
  }

  /** A single node; {@code overrides} are key/value pairs of configuration. */
  public static TestNode start(Object... overrides) {
    int port = freePort();
    return inCluster(port, List.of("127.0.0.1:" + port), overrides);
  }

  public static TestNode inCluster(int clusterPort, List<String> seeds, Object... overrides) {
    Map<String, Object> m = new HashMap<>();
    m.put("scopecast.http.host", "127.0.0.1");
    m.put("scopecast.http.port", 0);
    m.put("pekko.remote.artery.canonical.hostname", "127.0.0.1");
    m.put("pekko.remote.artery.canonical.port", clusterPort);
    m.put("pekko.coordinated-shutdown.exit-jvm", "off");
    m.put("pekko.coordinated-shutdown.run-by-jvm-shutdown-hook", "off");
    m.put("pekko.cluster.jmx.multi-mbeans-in-same-jvm", "on");
    for (int i = 0; i < overrides.length; i += 2) m.put((String) overrides[i], overrides[i + 1]);
    m.putIfAbsent("scopecast.auth.jwt-secret", TestSettings.SECRET);
    m.putIfAbsent("scopecast.auth.api-key", TestSettings.API_KEY);
    Config base = ConfigFactory.parseMap(m).withFallback(ConfigFactory.load());
    NodeConfig nc = NodeConfig.from(base, String.join(",", seeds));
    ActorSystem<Guardian.Command> system = ActorSystem.create(Guardian.create(nc.settings()), NodeConfig.SYSTEM_NAME, nc.config());
    Guardian.Node node = AskPattern.<Guardian.Command, Guardian.Node>ask(system, Guardian.GetNode::new,
        Duration.ofSeconds(30), system.scheduler()).toCompletableFuture().join();
    return new TestNode(system, node, clusterPort);
  }

  public static int freePort() {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Waits until this node sees {@code members} members Up. */
  public void awaitMembersUp(int members, Duration within) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    system.systemActorOf(Behaviors.<ClusterEvent.MemberEvent>setup(ctx -> {
      Cluster.get(ctx.getSystem()).subscriptions().tell(Subscribe.create(ctx.getSelf(), ClusterEvent.MemberEvent.class));
      Set<Address> up = new HashSet<>();
      return Behaviors.receiveMessage(e -> {
        if (e instanceof ClusterEvent.MemberUp) up.add(e.member().address());
        else up.remove(e.member().address());
        if (up.size() >= members) {
          done.complete(null);
          return Behaviors.stopped();
        }
        return Behaviors.same();
      });
    }), "await-members-" + UUID.randomUUID(), Props.empty());
    done.orTimeout(within.toMillis(), TimeUnit.MILLISECONDS).join();
  }

  public String nodeId() {
    return "127.0.0.1:" + clusterPort;
  }

  public int httpPort() {
    return node.httpAddress().getPort();
  }

  public URI ws(String query) {
    return URI.create("ws://127.0.0.1:" + httpPort() + "/ws" + (query.isEmpty() ? "" : "?" + query));
  }

  public ApiClient client() {
    return new ApiClient("http://127.0.0.1:" + httpPort());
  }

  /** An API call with the test API key. */
  public ApiClient.Answer api(String method, String path, String body) {
    return client().api(method, path, body);
  }

  public ApiClient.Answer call(String method, String path, String body, String key) {
    return client().call(method, path, body, key);
  }

  /** POST /api/publish; returns {epoch, offset}. */
  public JsonNode publish(String scope, String event, String payloadJson) {
    ApiClient.Answer a = api("POST", "/api/publish", "{\"scope\":\"" + scope + "\",\"event\":\"" + event + "\",\"payload\":" + payloadJson + "}");
    if (a.status() != 200) throw new AssertionError("publish " + scope + " -> " + a.status() + " " + a.text());
    return a.json();
  }

  @Override
  public void close() {
    system.terminate();
    system.getWhenTerminated().toCompletableFuture().join();
  }
}
