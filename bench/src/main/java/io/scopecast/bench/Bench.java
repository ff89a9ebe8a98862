package io.scopecast.bench;

import com.auth0.jwt.JWT;
import com.auth0.jwt.algorithms.Algorithm;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The Scopecast load generator: {@code java -jar bench/target/scopecast-bench.jar WORKLOAD [options]}.
 * Each run starts the server jar itself (or targets {@code --url}), prints one JSON line (also
 * appended to {@code --out}) and a human summary. See docs/benchmarks.md.
 */
public final class Bench {
  /** JVM flags of the server under test, unless --jvm says otherwise (docs/benchmarks.md explains them). */
  static final String DEFAULT_SERVER_JVM = "-Xms1g -Xmx1g -XX:+UseParallelGC -XX:ParallelGCThreads=1 -XX:+AlwaysPreTouch";

  /** For memory per connection: a heap that grows with use (no pre-touch), so RSS tells what connections cost. */
  static final String IDLE_SERVER_JVM = "-Xmx3g -XX:+UseParallelGC -XX:ParallelGCThreads=1";

  private static final String USAGE = """
      usage: java -jar bench/target/scopecast-bench.jar WORKLOAD [options]
        fanout        1 scope, --subscribers 1000, --rate 200 events/s, --events 2000 (after --warmup 400)
        saturate      the same at the highest rate a --window 256 of publishes in flight allows (--events 5000)
        rooms         --connections 5000, each in its user scope and one of --rooms 50; --rate 500 random publishes/s, --events 5000
        idle          --connections 10000 idle connections (--connections 50000 for the big run): RSS and heap per connection
        resume-storm  --subscribers 1000 dropped at once while --rate 200 publishing goes on; all reconnect with resume
        cluster       fanout over --nodes 3 local nodes (deploy/local/cluster.sh); subscribers spread, publishes through node 1
        sweep         fanout at each of --rates 50,100,200,400,800 on one server
        chart         --in FILE --out PNG: latency percentiles vs publish rate, from the fanout/sweep runs in FILE
        report        --in FILE --doc docs/benchmarks.md [--section table]: rewrite a table of figures (newest run per label)
      options: --redis (start redis-server and use it), --jar app/target/scopecast.jar, --jvm "server JVM flags",
               --server-cpus 0 --client-cpus 1 (taskset), --client-threads 1, --out bench/results/results.jsonl,
               --label NAME, --url http://host:port[,…] --secret S --api-key K (an already running server)""";

  private Bench() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 0 || args[0].equals("--help") || args[0].equals("help")) {
      System.out.println(USAGE);
      return;
    }
    String workload = args[0];
    Options o = new Options(args, 1);
    if (o.has("client-cpus")) pinSelf(o.string("client-cpus", "1"));
    Path out = Path.of(o.string("out", "bench/results/results.jsonl"));
    switch (workload) {
      case "fanout" -> withServer(o, 1, (s, c) -> fanout(o, s, c, o.number("rate", 200), "fanout").emit(out));
      case "saturate" -> withServer(o, 1, (s, c) -> fanout(o, s, c, 0, "saturate").emit(out));
      case "cluster" -> withServer(o, o.integer("nodes", 3), (s, c) -> {
        // nodes that joined within the last minute ask each other for handed-off scope state when a
        // scope starts (ScopeHandoff): measure the cluster in its steady state
        Server.pause(1000L * o.integer("settle", 65));
        fanout(o, s, c, o.number("rate", 200), "cluster").emit(out);
      });
      case "rooms" -> withServer(o, 1, (s, c) -> rooms(o, s, c).emit(out));
      case "idle" -> {
        if (!o.has("jvm")) o.all().put("jvm", IDLE_SERVER_JVM);
        withServer(o, 1, (s, c) -> idle(o, s, c).emit(out));
      }
      case "resume-storm" -> withServer(o, 1, (s, c) -> resumeStorm(o, s, c).emit(out));
      case "sweep" -> withServer(o, 1, (s, c) -> {
        for (String r : o.string("rates", "50,100,200,400,800").split(",")) {
          double rate = Double.parseDouble(r.trim());
          Options each = new Options(new String[] {"--label", "fanout@" + r.trim() + (o.flag("redis") ? "+redis" : "")}, 0);
          each.all().putAll(o.all());
          each.all().put("label", "fanout@" + r.trim() + (o.flag("redis") ? "+redis" : ""));
          each.all().put("rate", r.trim());
          fanout(each, s, c, rate, "fanout").emit(out);
        }
      });
      case "chart" -> Report.chart(Path.of(o.string("in", out.toString())), Path.of(o.string("out-png", o.string("png", "docs/benchmarks-latency.png"))));
      case "report" -> Report.table(Path.of(o.string("in", out.toString())), Path.of(o.string("doc", "docs/benchmarks.md")),
          o.string("section", "table"));
      default -> {
        System.err.println("unknown workload " + workload + "\n" + USAGE);
        System.exit(2);
      }
    }
    System.exit(0);
  }

  interface Run {
    void run(Server server, WsClients clients) throws Exception;
  }

  private static void withServer(Options o, int nodes, Run run) throws Exception {
    try (Server server = Server.start(o, nodes); WsClients clients = new WsClients(o.integer("client-threads", 1))) {
      run.run(server, clients);
    }
  }

  /** Moves this JVM (all its threads) to the given CPUs. */
  private static void pinSelf(String cpus) throws Exception {
    long pid = ProcessHandle.current().pid();
    new ProcessBuilder("taskset", "-a", "-p", "-c", cpus, Long.toString(pid)).inheritIO().start().waitFor();
  }

  static double generatorCpuSeconds() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime() / 1e9;
  }

  static String token(Server s, String user) {
    return JWT.create().withSubject(user).withClaim("workspaces", List.of("bench", "room-0"))
        .withExpiresAt(Instant.now().plus(Duration.ofHours(2))).sign(Algorithm.HMAC256(s.secret));
  }

  static String tokenFor(Server s, String user, String workspace) {
    return JWT.create().withSubject(user).withClaim("workspaces", List.of(workspace))
        .withExpiresAt(Instant.now().plus(Duration.ofHours(2))).sign(Algorithm.HMAC256(s.secret));
  }

  static String connectFrame(String token, String workspace, String resume) {
    return "{\"type\":\"connect\",\"token\":\"" + token + "\"" + (workspace == null ? "" : ",\"workspace\":\"" + workspace + "\"")
        + (resume == null ? "" : ",\"resume\":" + resume) + "}";
  }

  /** Opens {@code n} connections (at most {@code parallel} handshakes at a time), spread over the nodes. */
  static List<WsClients.Conn> connectAll(Server s, WsClients clients, int n, int parallel,
      java.util.function.IntFunction<String> frameOf) {
    return connectAll(s, clients, n, parallel, frameOf, (c, i) -> { });
  }

  /**
   * As above; {@code opened} runs for each connection before its handshake can complete. A
   * connection that fails is tried again (up to 5 times, after 1 s), as a client library would.
   */
  static List<WsClients.Conn> connectAll(Server s, WsClients clients, int n, int parallel,
      java.util.function.IntFunction<String> frameOf, java.util.function.ObjIntConsumer<WsClients.Conn> opened) {
    List<WsClients.Conn> conns = connectOnce(s, clients, n, parallel, frameOf, opened, i -> i);
    for (int attempt = 1; attempt <= 5; attempt++) {
      List<Integer> failed = new ArrayList<>();
      for (int i = 0; i < conns.size(); i++) if (conns.get(i).connected.isCompletedExceptionally()) failed.add(i);
      if (failed.isEmpty()) break;
      clients.failedConnects.add(failed.size());
      System.err.println("warning: " + failed.size() + " connections failed; trying them again");
      Server.pause(1000);
      List<WsClients.Conn> again = connectOnce(s, clients, failed.size(), parallel, k -> frameOf.apply(failed.get(k)),
          (c, k) -> opened.accept(c, failed.get(k)), failed::get);
      for (int k = 0; k < failed.size(); k++) conns.set(failed.get(k), again.get(k));
    }
    return conns;
  }

  private static List<WsClients.Conn> connectOnce(Server s, WsClients clients, int n, int parallel,
      java.util.function.IntFunction<String> frameOf, java.util.function.ObjIntConsumer<WsClients.Conn> opened,
      java.util.function.IntUnaryOperator slot) {
    List<WsClients.Conn> conns = new ArrayList<>(n);
    Semaphore inFlight = new Semaphore(parallel);
    List<CompletableFuture<String>> all = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      inFlight.acquireUninterruptibly();
      InetSocketAddress local = new InetSocketAddress("127.0.0." + (1 + slot.applyAsInt(i) / 25_000), 0);
      WsClients.Conn c = clients.open(s.ws(slot.applyAsInt(i)), frameOf.apply(i), local);
      opened.accept(c, i);
      conns.add(c);
      all.add(c.connected.whenComplete((v, e) -> inFlight.release()).exceptionally(e -> null));
    }
    CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).orTimeout(300, TimeUnit.SECONDS).join();
    return conns;
  }

  /** Waits until {@code done} holds or the timeout passes (polls: the figures are counters). */
  static boolean await(java.util.function.BooleanSupplier done, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!done.getAsBoolean()) {
      if (System.nanoTime() > deadline) return false;
      Server.pause(10);
    }
    return true;
  }

  static boolean reached(List<WsClients.Conn> conns, String scope, long count) {
    for (WsClients.Conn c : conns) if (!c.closed && c.track(scope).count < count) return false;
    return true;
  }

  static long[] counts(List<WsClients.Conn> conns, String scope) {
    long[] out = new long[conns.size()];
    for (int i = 0; i < out.length; i++) out[i] = conns.get(i).track(scope).count;
    return out;
  }

  static long delivered(List<WsClients.Conn> conns, String scope, long[] start) {
    long d = 0;
    for (int i = 0; i < start.length; i++) d += conns.get(i).track(scope).count - start[i];
    return d;
  }

  static long shortfall(List<WsClients.Conn> conns, String scope, long expected) {
    long s = 0;
    for (WsClients.Conn c : conns) s += Math.max(0, expected - c.track(scope).count);
    return s;
  }

  // ---- workloads -----------------------------------------------------------------------------

  /** fanout / saturate / cluster: one scope, many subscribers, publishes at a rate (0: as fast as allowed). */
  static Result fanout(Options o, Server s, WsClients clients, double rate, String workload) {
    int subs = o.integer("subscribers", 1000);
    int events = o.integer("events", rate == 0 ? 5000 : 2000);
    int warmup = o.integer("warmup", 400);
    String scope = "workspace:bench";
    List<WsClients.Conn> all = connectAll(s, clients, subs, 200, i -> connectFrame(tokenFor(s, "s" + i, "bench"), "bench", null));
    // a client whose connected frame did not list the scope was told so (an error frame): it is not
    // a subscriber, and a real client would subscribe again; it is counted, not measured
    List<WsClients.Conn> conns = all.stream().filter(c -> c.track(scope).epoch != null).toList();
    int unsubscribed = all.size() - conns.size();
    if (unsubscribed > 0) System.err.println("warning: " + unsubscribed + " clients are not subscribed to " + scope);
    List<String> publishVia = workload.equals("cluster") ? List.of(s.bases.get(0)) : s.bases;
    Publisher pub = new Publisher(publishVia, s.apiKey, o.integer("window", rate == 0 ? 256 : 64));

    pub.run(warmup, rate == 0 ? 2000 : rate, i -> scope);
    await(() -> reached(conns, scope, warmup), Duration.ofSeconds(60));
    clients.latencyMicros.reset();
    long[] start = counts(conns, scope);
    double cpu0 = s.cpuSeconds();
    double redis0 = s.redisCpuSeconds();
    double gen0 = generatorCpuSeconds();
    long t0 = System.nanoTime();

    pub.run(events, rate, i -> scope);
    boolean complete = await(() -> reached(conns, scope, warmup + events), Duration.ofSeconds(60));
    double wall = (System.nanoTime() - t0) / 1e9;
    double cpu = s.cpuSeconds() - cpu0;
    long delivered = delivered(conns, scope, start);
    long late = shortfall(conns, scope, warmup + events);
    if (!complete) await(() -> reached(conns, scope, warmup + events), Duration.ofSeconds(120)); // stragglers are late, not lost
    long lost = shortfall(conns, scope, warmup + events) + clients.gaps.sum();
    long expectedDeliveries = (long) conns.size() * events;
    Result r = new Result(workload, o)
        .put("nodes", s.bases.size()).put("subscribers", conns.size()).put("not_subscribed", unsubscribed).put("events", events)
        .put("publish_rate_target", rate).put("publish_rate", events / wall)
        .put("delivered", delivered).put("lost", lost).put("late_at_end_of_window", late).put("gaps", clients.gaps.sum())
        .put("duplicates", clients.duplicates.sum()).put("complete", complete ? "yes" : "no").put("publish_errors", pub.failed.sum())
        .put("wall_s", wall).put("delivered_per_s", delivered / wall)
        .put("server_cpu_s", cpu).put("delivered_per_server_cpu_s", delivered / Math.max(cpu, 1e-9))
        .put("redis_cpu_s", s.redisCpuSeconds() - redis0)
        .put("generator_cpu_s", generatorCpuSeconds() - gen0)
        .put("server_peak_rss_mb", s.peakRssKb() / 1024.0)
        .latency("latency_ms", clients.latencyMicros);
    r.put("expected", expectedDeliveries);
    all.forEach(WsClients.Conn::close);
    return r;
  }

  /** rooms: every connection in its own user scope and one of a few shared rooms; random publishes. */
  static Result rooms(Options o, Server s, WsClients clients) {
    int n = o.integer("connections", 5000);
    int rooms = o.integer("rooms", 50);
    int events = o.integer("events", 5000);
    double rate = o.number("rate", 500);
    double userShare = o.number("user-share", 0.1);
    List<WsClients.Conn> conns = connectAll(s, clients, n, 200,
        i -> connectFrame(tokenFor(s, "r" + i, "room-" + (i % rooms)), "room-" + (i % rooms), null));
    Publisher pub = new Publisher(s.bases, s.apiKey, o.integer("window", 64));
    Random random = new Random(42);
    String[] targets = new String[events];
    long[] perRoom = new long[rooms];
    long[] perUser = new long[n];
    long expected = 0;
    for (int i = 0; i < events; i++) {
      if (random.nextDouble() < userShare) {
        int u = random.nextInt(n);
        targets[i] = "user:r" + u;
        perUser[u]++;
        expected++;
      } else {
        int room = random.nextInt(rooms);
        targets[i] = "workspace:room-" + room;
        perRoom[room]++;
        expected += (n / rooms) + (room < n % rooms ? 1 : 0);
      }
    }
    pub.run(Math.min(500, events), rate, i -> "workspace:room-" + (i % rooms)); // warm-up, not counted
    long warmDeliveries = 0;
    for (int i = 0; i < Math.min(500, events); i++) warmDeliveries += (n / rooms) + ((i % rooms) < n % rooms ? 1 : 0);
    long warm = warmDeliveries;
    await(() -> clients.events.sum() >= warm, Duration.ofSeconds(60));
    clients.latencyMicros.reset();
    long before = clients.events.sum();
    double cpu0 = s.cpuSeconds();
    double gen0 = generatorCpuSeconds();
    long t0 = System.nanoTime();
    pub.run(events, rate, i -> targets[i]);
    long exp = expected;
    boolean complete = await(() -> clients.events.sum() - before >= exp, Duration.ofSeconds(60));
    double wall = (System.nanoTime() - t0) / 1e9;
    double cpu = s.cpuSeconds() - cpu0;
    long delivered = clients.events.sum() - before;
    long lost = 0;
    int warmEach = Math.min(500, events);
    for (int i = 0; i < n; i++) {
      int room = i % rooms;
      long warmRoom = 0;
      for (int w = 0; w < warmEach; w++) if (w % rooms == room) warmRoom++;
      lost += Math.max(0, perRoom[room] + warmRoom - conns.get(i).track("workspace:room-" + room).count);
      lost += Math.max(0, perUser[i] - conns.get(i).track("user:r" + i).count);
    }
    Result r = new Result("rooms", o).put("connections", n).put("rooms", rooms).put("events", events)
        .put("publish_rate", events / wall).put("delivered", delivered).put("expected", expected).put("lost", lost)
        .put("gaps", clients.gaps.sum()).put("complete", complete ? "yes" : "no").put("publish_errors", pub.failed.sum())
        .put("wall_s", wall).put("delivered_per_s", delivered / wall)
        .put("server_cpu_s", cpu).put("delivered_per_server_cpu_s", delivered / Math.max(cpu, 1e-9))
        .put("generator_cpu_s", generatorCpuSeconds() - gen0)
        .put("server_peak_rss_mb", s.peakRssKb() / 1024.0)
        .latency("latency_ms", clients.latencyMicros);
    conns.forEach(WsClients.Conn::close);
    return r;
  }

  /** idle: many connections that only answer pings; memory per connection and connection rate. */
  static Result idle(Options o, Server s, WsClients clients) {
    int n = o.integer("connections", 10_000);
    connectAll(s, clients, 200, 100, i -> connectFrame(tokenFor(s, "warm" + i, "bench"), null, null)).forEach(WsClients.Conn::close);
    await(() -> clients.openConnections() == 0, Duration.ofSeconds(30));
    long heap0 = s.liveHeapBytes();
    long rss0 = s.rssKb();
    double cpu0 = s.cpuSeconds();
    long t0 = System.nanoTime();
    List<WsClients.Conn> conns = connectAll(s, clients, n, o.integer("parallel", 200),
        i -> connectFrame(tokenFor(s, "i" + i, "bench"), null, null));
    double connectWall = (System.nanoTime() - t0) / 1e9;
    double connectCpu = s.cpuSeconds() - cpu0;
    Server.pause(2000); // let the server settle: buffers and lazily allocated state
    long heap1 = s.liveHeapBytes();
    long rss1 = s.rssKb();
    Result r = new Result("idle", o).put("connections", n)
        .put("connections_per_s", n / connectWall).put("connect_server_cpu_ms_per_connection", connectCpu * 1000 / n)
        .put("server_rss_before_mb", rss0 / 1024.0).put("server_rss_after_mb", rss1 / 1024.0)
        .put("rss_kb_per_connection", (rss1 - rss0) / (double) n)
        .put("live_heap_before_mb", heap0 / 1048576.0).put("live_heap_after_mb", heap1 / 1048576.0)
        .put("live_heap_kb_per_connection", (heap1 - heap0) / 1024.0 / n)
        .put("open", clients.openConnections()).put("failed_connects", clients.failedConnects.sum())
        .put("server_jvm", o.string("jvm", DEFAULT_SERVER_JVM));
    conns.forEach(WsClients.Conn::close);
    return r;
  }

  /** resume-storm: all subscribers dropped at once while publishing goes on; all come back with resume. */
  static Result resumeStorm(Options o, Server s, WsClients clients) throws Exception {
    int subs = o.integer("subscribers", 1000);
    double rate = o.number("rate", 200);
    String scope = "workspace:bench";
    List<WsClients.Conn> conns = connectAll(s, clients, subs, 200, i -> connectFrame(tokenFor(s, "s" + i, "bench"), "bench", null));
    Publisher pub = new Publisher(s.bases, s.apiKey, 64);
    AtomicBoolean publishing = new AtomicBoolean(true);
    long[] published = new long[1];
    Thread publisher = new Thread(() -> {
      long start = System.nanoTime();
      for (long i = 0; publishing.get(); i++) {
        long wait = start + (long) (i * 1e9 / rate) - System.nanoTime();
        if (wait > 0) java.util.concurrent.locks.LockSupport.parkNanos(wait);
        pub.publish(scope, "bench").join();
        published[0] = i + 1;
      }
    }, "storm-publisher");
    publisher.start();
    Server.pause(3000);
    long gaps0 = clients.gaps.sum();
    List<String> resumes = new ArrayList<>(subs);
    for (WsClients.Conn c : conns) resumes.add(c.resume());
    conns.forEach(WsClients.Conn::close);
    await(() -> clients.openConnections() == 0, Duration.ofSeconds(30));
    long target = published[0];
    double cpu0 = s.cpuSeconds();
    long t0 = System.nanoTime();
    // each client's position carries over to its new connection, so the check for gaps goes on
    List<WsClients.Conn> back = connectAll(s, clients, subs, subs,
        i -> connectFrame(tokenFor(s, "s" + i, "bench"), "bench", resumes.get(i)),
        (c, i) -> c.seed(scope, conns.get(i).track(scope)));
    boolean caughtUp = await(() -> back.stream().allMatch(c -> c.track(scope).last >= target), Duration.ofSeconds(60));
    double catchUp = (System.nanoTime() - t0) / 1e9;
    double cpu = s.cpuSeconds() - cpu0;
    publishing.set(false);
    publisher.join();
    Result r = new Result("resume-storm", o).put("subscribers", subs).put("publish_rate", rate)
        .put("caught_up", caughtUp ? "yes" : "no").put("catch_up_s", catchUp).put("server_cpu_s", cpu)
        .put("gaps_after_resume", clients.gaps.sum() - gaps0).put("resyncs", clients.resyncs.sum())
        .put("duplicates", clients.duplicates.sum()).put("publish_errors", pub.failed.sum())
        .put("failed_connect_attempts", clients.failedConnects.sum());
    back.forEach(WsClients.Conn::close);
    return r;
  }
}
