package io.scopecast.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The server under test: the jar started by the bench (one node, or N nodes through
 * {@code deploy/local/cluster.sh}), optionally pinned to CPUs with {@code taskset}, optionally
 * with a {@code redis-server} of its own; or an already running server given by URL. Its CPU time
 * and memory are read from {@code /proc}; live heap with {@code jcmd}.
 */
final class Server implements AutoCloseable {
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final long CLOCK_TICKS = 100;

  final List<String> bases = new ArrayList<>();
  final List<Long> pids = new ArrayList<>();
  final String secret;
  final String apiKey;
  private final List<Process> processes = new ArrayList<>();
  private Path runDir;
  private Path script;
  private Process redis;
  Long redisPid;

  private Server(String secret, String apiKey) {
    this.secret = secret;
    this.apiKey = apiKey;
  }

  static Server start(Options o, int nodes) {
    if (o.has("url")) {
      Server s = new Server(o.string("secret", ""), o.string("api-key", ""));
      s.bases.addAll(Arrays.asList(o.string("url", "").split(",")));
      return s;
    }
    Server s = new Server(random(), random());
    try {
      s.runDir = Files.createTempDirectory("scopecast-bench");
      String redisUrl = o.flag("redis") ? s.startRedis(o) : null;
      if (nodes == 1) s.startOne(o, redisUrl);
      else s.startCluster(o, nodes, redisUrl);
      for (String base : s.bases) s.awaitReady(base, nodes);
      return s;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String random() {
    byte[] b = new byte[24];
    new SecureRandom().nextBytes(b);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }

  static int freePort() {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private List<String> pinned(Options o, List<String> cmd) {
    List<String> out = new ArrayList<>();
    if (o.has("server-cpus")) out.addAll(List.of("taskset", "-c", o.string("server-cpus", "0")));
    out.addAll(cmd);
    return out;
  }

  private String startRedis(Options o) throws IOException {
    int port = freePort();
    ProcessBuilder pb = new ProcessBuilder(pinned(o, List.of("redis-server", "--port", Integer.toString(port),
        "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", runDir.toString())))
        .redirectErrorStream(true).redirectOutput(runDir.resolve("redis.log").toFile());
    redis = pb.start();
    redisPid = redis.pid();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!Files.readString(runDir.resolve("redis.log")).contains("Ready to accept")) {
      if (!redis.isAlive() || System.nanoTime() > deadline) throw new IllegalStateException("redis-server did not start");
      pause(50);
    }
    return "redis://127.0.0.1:" + port;
  }

  private void startOne(Options o, String redisUrl) throws IOException {
    int http = freePort();
    int cluster = freePort();
    List<String> cmd = new ArrayList<>(List.of("java"));
    cmd.addAll(Arrays.asList(o.string("jvm", Bench.DEFAULT_SERVER_JVM).trim().split("\\s+")));
    cmd.addAll(List.of("-jar", o.string("jar", "app/target/scopecast.jar")));
    ProcessBuilder pb = new ProcessBuilder(pinned(o, cmd)).redirectErrorStream(true)
        .redirectOutput(runDir.resolve("server.log").toFile());
    Map<String, String> env = pb.environment();
    env.keySet().removeIf(k -> k.startsWith("SCOPECAST_"));
    env.put("SCOPECAST_HOST", "127.0.0.1");
    env.put("SCOPECAST_PORT", Integer.toString(http));
    env.put("SCOPECAST_CLUSTER_HOST", "127.0.0.1");
    env.put("SCOPECAST_CLUSTER_PORT", Integer.toString(cluster));
    env.put("SCOPECAST_JWT_SECRET", secret);
    env.put("SCOPECAST_API_KEY", apiKey);
    if (redisUrl != null) env.put("SCOPECAST_REDIS_URL", redisUrl);
    Process p = pb.start();
    processes.add(p);
    pids.add(p.pid());
    bases.add("http://127.0.0.1:" + http);
  }

  private void startCluster(Options o, int nodes, String redisUrl) throws IOException {
    script = Path.of(o.string("cluster-script", "deploy/local/cluster.sh"));
    List<String> http = new ArrayList<>();
    List<String> cluster = new ArrayList<>();
    for (int i = 0; i < nodes; i++) {
      http.add(Integer.toString(freePort()));
      cluster.add(Integer.toString(freePort()));
    }
    ProcessBuilder pb = new ProcessBuilder(pinned(o, List.of("bash", script.toString(), "start", Integer.toString(nodes))))
        .redirectErrorStream(true).redirectOutput(runDir.resolve("cluster.log").toFile());
    Map<String, String> env = pb.environment();
    env.keySet().removeIf(k -> k.startsWith("SCOPECAST_"));
    env.put("SCOPECAST_JAR", Path.of(o.string("jar", "app/target/scopecast.jar")).toAbsolutePath().toString());
    env.put("SCOPECAST_RUN_DIR", runDir.toString());
    env.put("HTTP_PORTS", String.join(",", http));
    env.put("CLUSTER_PORTS", String.join(",", cluster));
    env.put("SCOPECAST_JWT_SECRET", secret);
    env.put("SCOPECAST_API_KEY", apiKey);
    env.put("JAVA_OPTS", o.string("jvm", Bench.DEFAULT_SERVER_JVM));
    if (redisUrl != null) env.put("SCOPECAST_REDIS_URL", redisUrl);
    try {
      Process p = pb.start();
      if (!p.waitFor(180, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IllegalStateException("cluster did not start: " + Files.readString(runDir.resolve("cluster.log")));
      }
    } catch (InterruptedException e) {
      throw new IllegalStateException(e);
    }
    for (int i = 1; i <= nodes; i++) {
      pids.add(Long.parseLong(Files.readString(runDir.resolve("node-" + i + ".pid")).trim()));
      bases.add("http://127.0.0.1:" + http.get(i - 1));
    }
  }

  private void awaitReady(String base, int members) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (System.nanoTime() < deadline) {
      try {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/health/ready")).build(),
            HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() == 200) return;
      } catch (IOException notYet) {
        // starting
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
      for (Process p : processes) {
        if (!p.isAlive()) throw new IllegalStateException("the server exited; see " + runDir.resolve("server.log"));
      }
      pause(100);
    }
    throw new IllegalStateException(base + " not ready");
  }

  static void pause(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  URI ws(int node) {
    return URI.create(bases.get(node % bases.size()).replaceFirst("^http", "ws") + "/ws");
  }

  /** CPU seconds (user + system) the server processes have used so far. */
  double cpuSeconds() {
    return pids.stream().mapToDouble(Server::cpuSecondsOf).sum();
  }

  double redisCpuSeconds() {
    return redisPid == null ? 0 : cpuSecondsOf(redisPid);
  }

  static double cpuSecondsOf(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / (double) CLOCK_TICKS;
    } catch (IOException | RuntimeException e) {
      return 0;
    }
  }

  /** Resident memory now (kB), summed over the server processes. */
  long rssKb() {
    return pids.stream().mapToLong(p -> status(p, "VmRSS")).sum();
  }

  long peakRssKb() {
    return pids.stream().mapToLong(p -> status(p, "VmHWM")).sum();
  }

  private static long status(long pid, String field) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith(field + ":")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    } catch (IOException e) {
      // gone
    }
    return 0;
  }

  /** Live heap bytes after a full GC (jcmd GC.class_histogram runs one), summed over the servers. */
  long liveHeapBytes() {
    long total = 0;
    for (long pid : pids) {
      try {
        Process p = new ProcessBuilder("jcmd", Long.toString(pid), "GC.class_histogram").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(60, TimeUnit.SECONDS);
        Matcher m = Pattern.compile("Total\\s+(\\d+)\\s+(\\d+)").matcher(out);
        if (m.find()) total += Long.parseLong(m.group(2));
      } catch (IOException e) {
        return -1;
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
    }
    return total;
  }

  @Override
  public void close() {
    if (script != null) {
      try {
        ProcessBuilder pb = new ProcessBuilder("bash", script.toString(), "stop").redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.environment().put("SCOPECAST_RUN_DIR", runDir.toString());
        pb.start().waitFor(60, TimeUnit.SECONDS);
      } catch (IOException | InterruptedException ignored) {
        // best effort
      }
    }
    for (Process p : processes) {
      p.destroy();
      try {
        if (!p.waitFor(30, TimeUnit.SECONDS)) p.destroyForcibly();
      } catch (InterruptedException e) {
        p.destroyForcibly();
      }
    }
    if (redis != null) redis.destroyForcibly();
  }
}
