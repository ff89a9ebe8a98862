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
 * with a {@code redis-server} of its own; or a comparison server of {@code bench/servers/}
 * ({@code --target socketio|ws}) started with {@code node} and pinned the same way; or an already
 * running server given by URL. Its CPU time and memory are read from {@code /proc}; live heap
 * with {@code jcmd} (Scopecast only).
 */
final class Server implements AutoCloseable {
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final long CLOCK_TICKS = 100;

  final List<String> bases = new ArrayList<>();
  final List<Long> pids = new ArrayList<>();
  final String secret;
  final String apiKey;
  final Target target;
  /** What ran: the JVM flags, or node's and the npm package's versions. */
  String describe = "";
  private final List<Process> processes = new ArrayList<>();
  private Path runDir;
  private Path script;
  private Process redis;
  Long redisPid;

  private Server(Target target, String secret, String apiKey) {
    this.target = target;
    this.secret = secret;
    this.apiKey = apiKey;
  }

  static Server start(Options o, int nodes) {
    Target target = Target.of(o);
    if (o.has("url")) {
      Server s = new Server(target, o.string("secret", ""), o.string("api-key", ""));
      s.bases.addAll(Arrays.asList(o.string("url", "").split(",")));
      s.describe = "already running at " + o.string("url", "");
      return s;
    }
    Server s = new Server(target, random(), random());
    try {
      s.runDir = Files.createTempDirectory("scopecast-bench");
      if (target.isNode()) {
        try {
          s.startNode(o);
          s.awaitListening(s.bases.get(0));
        } catch (RuntimeException | IOException e) {
          s.close();
          throw e;
        }
        return s;
      }
      String redisUrl = o.flag("redis") ? s.startRedis(o) : null;
      if (nodes == 1) s.startOne(o, redisUrl);
      else s.startCluster(o, nodes, redisUrl);
      for (String base : s.bases) s.awaitReady(base, nodes);
      s.describe = "JVM " + o.string("jvm", Bench.DEFAULT_SERVER_JVM);
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

  /** A comparison server: {@code node bench/servers/ID/server.js --port P}, pinned like Scopecast. */
  private void startNode(Options o) throws IOException {
    Path dir = Path.of(o.string("servers", "bench/servers"), target.id);
    Path pkg = dir.resolve("node_modules").resolve(target.npmPackage).resolve("package.json");
    if (!Files.exists(pkg)) throw new IllegalStateException(pkg + " is missing: run bench/servers/install.sh");
    int http = freePort();
    String node = o.string("node", "node");
    List<String> cmd = new ArrayList<>(List.of(node));
    if (o.has("node-flags")) cmd.addAll(Arrays.asList(o.string("node-flags", "").trim().split("\\s+")));
    cmd.addAll(List.of(dir.resolve("server.js").toString(), "--port", Integer.toString(http)));
    ProcessBuilder pb = new ProcessBuilder(pinned(o, cmd)).redirectErrorStream(true)
        .redirectOutput(runDir.resolve("server.log").toFile());
    pb.environment().put("HOST", "127.0.0.1");
    pb.environment().put("NODE_ENV", "production");
    Process p = pb.start();
    processes.add(p);
    pids.add(p.pid());
    bases.add("http://127.0.0.1:" + http);
    String version = Result.JSON.readTree(pkg.toFile()).path("version").asText();
    describe = "node " + output(node, "--version") + (o.has("node-flags") ? " " + o.string("node-flags", "") : "")
        + ", " + target.npmPackage + " " + version;
  }

  private static String output(String... cmd) {
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      p.waitFor(10, TimeUnit.SECONDS);
      return out;
    } catch (IOException e) {
      return "?";
    } catch (InterruptedException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A comparison server is ready once it answers HTTP at all (it has no health route). */
  private void awaitListening(String base) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      try {
        // HTTP/1.1: an h2c upgrade request is a WebSocket-less upgrade Engine.IO destroys
        HTTP.send(HttpRequest.newBuilder(URI.create(base + "/")).version(HttpClient.Version.HTTP_1_1).build(),
            HttpResponse.BodyHandlers.discarding());
        return;
      } catch (IOException notYet) {
        // starting
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
      if (!processes.get(0).isAlive()) throw new IllegalStateException("the server exited; see " + runDir.resolve("server.log"));
      pause(50);
    }
    throw new IllegalStateException(base + " not listening; see " + runDir.resolve("server.log"));
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

  /** Live heap bytes after a full GC (jcmd GC.class_histogram runs one), summed over the servers; -1 off the JVM. */
  long liveHeapBytes() {
    if (target.isNode()) return -1;
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
