package io.scopecast.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.scopecast.actors.settings.ScopecastSettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The Kubernetes manifests parse and agree with the server's configuration. */
class DeploymentManifestsTest {
  private static final Path DIR = Path.of("..", "deploy", "kubernetes");
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  private static List<JsonNode> documents() throws IOException {
    List<JsonNode> docs = new ArrayList<>();
    try (Stream<Path> files = Files.list(DIR)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList()) {
        try (var parser = YAML.getFactory().createParser(f.toFile())) {
          for (var it = YAML.readValues(parser, JsonNode.class); it.hasNext(); ) {
            JsonNode doc = it.next();
            if (doc != null && !doc.isNull()) docs.add(doc);
          }
        }
      }
    }
    return docs;
  }

  private static JsonNode kind(List<JsonNode> docs, String kind, String name) {
    return docs.stream().filter(d -> kind.equals(d.path("kind").asText()) && name.equals(d.path("metadata").path("name").asText()))
        .findFirst().orElseThrow(() -> new AssertionError("no " + kind + " " + name));
  }

  private static JsonNode env(JsonNode container, String name) {
    for (JsonNode e : container.path("env")) if (name.equals(e.path("name").asText())) return e;
    return MissingNode.getInstance();
  }

  @Test
  void theStatefulSetMatchesTheServersPortsProbesAndShutdown() throws IOException {
    List<JsonNode> docs = documents();
    Config config = ConfigFactory.load();
    ScopecastSettings settings = ScopecastSettings.fromConfig(config, "x");
    JsonNode sts = kind(docs, "StatefulSet", "scopecast");
    JsonNode pod = sts.path("spec").path("template").path("spec");
    JsonNode container = pod.path("containers").get(0);

    int http = 0;
    int cluster = 0;
    for (JsonNode p : container.path("ports")) {
      if (p.path("name").asText().equals("http")) http = p.path("containerPort").asInt();
      if (p.path("name").asText().equals("cluster")) cluster = p.path("containerPort").asInt();
    }
    assertEquals(settings.http().port(), http, "the container's http port is scopecast.http.port");
    assertEquals(Integer.toString(http), env(container, "SCOPECAST_PORT").path("value").asText());
    assertEquals(config.getInt("pekko.remote.artery.canonical.port"), cluster, "the cluster port is cluster.conf's");
    assertEquals(Integer.toString(cluster), env(container, "SCOPECAST_CLUSTER_PORT").path("value").asText());

    assertEquals("/health/ready", container.path("readinessProbe").path("httpGet").path("path").asText());
    assertEquals("/health/live", container.path("livenessProbe").path("httpGet").path("path").asText());
    assertEquals("http", container.path("readinessProbe").path("httpGet").path("port").asText());

    assertTrue(pod.path("terminationGracePeriodSeconds").asLong() > settings.shutdownTimeout().toSeconds(),
        "the grace period outlasts scopecast.shutdown-timeout");

    String service = sts.path("spec").path("serviceName").asText();
    String seeds = env(container, "SCOPECAST_SEED_NODES").path("value").asText();
    int replicas = sts.path("spec").path("replicas").asInt();
    for (int i = 0; i < replicas; i++) {
      assertTrue(seeds.contains("scopecast-" + i + "." + service + ".$(NAMESPACE).svc.cluster.local:" + cluster),
          "seed " + i + " is the pod's stable name: " + seeds);
    }
    assertTrue(env(container, "SCOPECAST_CLUSTER_HOST").path("value").asText().contains("." + service + "."));
  }

  @Test
  void theServicesAndTheDisruptionBudgetSelectTheScopecastPods() throws IOException {
    List<JsonNode> docs = documents();
    JsonNode labels = kind(docs, "StatefulSet", "scopecast").path("spec").path("template").path("metadata").path("labels");
    JsonNode headless = kind(docs, "Service", "scopecast-cluster");
    assertEquals("None", headless.path("spec").path("clusterIP").asText());
    assertTrue(headless.path("spec").path("publishNotReadyAddresses").asBoolean());
    for (JsonNode selector : List.of(headless.path("spec").path("selector"),
        kind(docs, "Service", "scopecast").path("spec").path("selector"),
        kind(docs, "PodDisruptionBudget", "scopecast").path("spec").path("selector").path("matchLabels"))) {
      selector.fields().forEachRemaining(e -> assertEquals(labels.path(e.getKey()), e.getValue(), "selector " + e.getKey()));
    }
    assertEquals(1, kind(docs, "PodDisruptionBudget", "scopecast").path("spec").path("maxUnavailable").asInt());
  }
}
