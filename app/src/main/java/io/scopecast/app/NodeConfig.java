package io.scopecast.app;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import io.scopecast.actors.settings.ScopecastSettings;
import io.scopecast.http.HealthRoutes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The configuration of one node: {@code ConfigFactory.load()} (application.conf with cluster.conf,
 * system properties on top) plus what HOCON cannot say by itself: the seed nodes of
 * {@code SCOPECAST_SEED_NODES} and the cluster role that carries the node id.
 */
public record NodeConfig(Config config, ScopecastSettings settings) {
  public static final String SYSTEM_NAME = "scopecast";

  public static NodeConfig load() {
    return from(ConfigFactory.load(), System.getenv("SCOPECAST_SEED_NODES"));
  }

  /** @param seedNodes comma-separated host:port list; null or blank: the node itself */
  public static NodeConfig from(Config base, String seedNodes) {
    String host = base.getString("pekko.remote.artery.canonical.hostname");
    int port = base.getInt("pekko.remote.artery.canonical.port");
    ScopecastSettings settings = ScopecastSettings.fromConfig(base, host + ":" + port);
    Config config = base;
    if (base.getStringList("pekko.cluster.seed-nodes").isEmpty()) {
      config = config.withValue("pekko.cluster.seed-nodes",
          ConfigValueFactory.fromIterable(seedAddresses(seedNodes, host + ":" + port)));
    }
    List<String> roles = new ArrayList<>(base.getStringList("pekko.cluster.roles"));
    roles.add(HealthRoutes.NODE_ROLE_PREFIX + settings.nodeId());
    config = config.withValue("pekko.cluster.roles", ConfigValueFactory.fromIterable(roles));
    return new NodeConfig(config.resolve(), settings);
  }

  static List<String> seedAddresses(String seedNodes, String self) {
    String list = seedNodes == null || seedNodes.isBlank() ? self : seedNodes;
    List<String> out = new ArrayList<>();
    for (String hostPort : Arrays.stream(list.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList()) {
      if (!hostPort.matches("[^:/@]+:\\d{1,5}")) {
        throw new IllegalArgumentException("SCOPECAST_SEED_NODES: '" + hostPort + "' is not host:port");
      }
      out.add("pekko://" + SYSTEM_NAME + "@" + hostPort);
    }
    return out;
  }

  public NodeConfig withSettings(ScopecastSettings newSettings) {
    return new NodeConfig(config, newSettings);
  }
}
