package io.scopecast.bench;

import static io.scopecast.bench.Connect.await;
import static io.scopecast.bench.Connect.connectAll;
import static io.scopecast.bench.Connect.counts;
import static io.scopecast.bench.Connect.delivered;
import static io.scopecast.bench.Connect.reached;
import static io.scopecast.bench.Connect.shortfall;

import io.scopecast.bench.Connect.Who;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The workloads. fanout, saturate, rooms and idle run the same way on every {@link Target}: the
 * same clients, the same publishes through the target's HTTP publish, the same figures.
 * resume-storm and cluster are Scopecast's own.
 */
final class Workloads {
  private Workloads() {}

  /** fanout / saturate / cluster: one scope, many subscribers, publishes at a rate (0: as fast as allowed). */
  static Result fanout(Options o, Server s, WsClients clients, double rate, String workload) {
    int subs = o.integer("subscribers", 1000);
    int events = o.integer("events", rate == 0 ? 5000 : 2000);
    int warmup = o.integer("warmup", 400);
    String scope = "workspace:bench";
    List<WsClients.Conn> all = connectAll(s, clients, subs, 200, i -> new Who("s" + i, "bench"));
    // a client whose connected frame did not list the scope was told so (an error frame): it is not
    // a subscriber, and a real client would subscribe again; it is counted, not measured
    List<WsClients.Conn> conns = all.stream().filter(c -> c.track(scope).epoch != null).toList();
    int unsubscribed = all.size() - conns.size();
    if (unsubscribed > 0) System.err.println("warning: " + unsubscribed + " clients are not subscribed to " + scope);
    List<String> publishVia = workload.equals("cluster") ? List.of(s.bases.get(0)) : s.bases;
    Publisher pub = new Publisher(s.target, publishVia, s.apiKey, o.integer("window", rate == 0 ? 256 : 64), o.integer("batch", 1));

    pub.run(warmup, rate == 0 ? 2000 : rate, i -> scope);
    await(() -> reached(conns, scope, warmup), Duration.ofSeconds(60));
    clients.latencyMicros.reset();
    long[] start = counts(conns, scope);
    double cpu0 = s.cpuSeconds();
    double redis0 = s.redisCpuSeconds();
    double gen0 = Bench.generatorCpuSeconds();
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
        .put("server_cpu_s", cpu).put("server_cpu_pct", 100 * cpu / wall)
        .put("delivered_per_server_cpu_s", delivered / Math.max(cpu, 1e-9))
        .put("publishes_per_server_cpu_s", events / Math.max(cpu, 1e-9)).put("events_per_request", o.integer("batch", 1))
        .put("redis_cpu_s", s.redisCpuSeconds() - redis0)
        .put("generator_cpu_s", Bench.generatorCpuSeconds() - gen0)
        .put("generator_cpu_pct", 100 * (Bench.generatorCpuSeconds() - gen0) / wall)
        .put("server_peak_rss_mb", s.peakRssKb() / 1024.0)
        .latency("latency_ms", clients.latencyMicros);
    r.put("expected", expectedDeliveries).put("loss_check", lossCheck(s)).put("server", s.describe);
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
    List<WsClients.Conn> conns = connectAll(s, clients, n, 200, i -> new Who("r" + i, "room-" + (i % rooms)));
    Publisher pub = new Publisher(s.target, s.bases, s.apiKey, o.integer("window", 64));
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
    double gen0 = Bench.generatorCpuSeconds();
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
        .put("server_cpu_s", cpu).put("server_cpu_pct", 100 * cpu / wall)
        .put("delivered_per_server_cpu_s", delivered / Math.max(cpu, 1e-9))
        .put("publishes_per_server_cpu_s", events / Math.max(cpu, 1e-9))
        .put("generator_cpu_s", Bench.generatorCpuSeconds() - gen0)
        .put("generator_cpu_pct", 100 * (Bench.generatorCpuSeconds() - gen0) / wall)
        .put("server_peak_rss_mb", s.peakRssKb() / 1024.0)
        .latency("latency_ms", clients.latencyMicros)
        .put("loss_check", lossCheck(s)).put("server", s.describe);
    conns.forEach(WsClients.Conn::close);
    return r;
  }

  /** idle: many connections that only answer pings; memory per connection and connection rate. */
  static Result idle(Options o, Server s, WsClients clients) {
    int n = o.integer("connections", 10_000);
    // a warm-up round first (JIT, pools, lazily built state), so the connection rate is a warm one
    int warm = Math.min(n, o.integer("warm-connections", 1000));
    connectAll(s, clients, warm, 100, i -> new Who("warm" + i, null)).forEach(WsClients.Conn::close);
    await(() -> clients.openConnections() == 0, Duration.ofSeconds(30));
    long heap0 = s.liveHeapBytes();
    long rss0 = s.rssKb();
    double cpu0 = s.cpuSeconds();
    double gen0 = Bench.generatorCpuSeconds();
    long t0 = System.nanoTime();
    List<WsClients.Conn> conns = connectAll(s, clients, n, o.integer("parallel", 200), i -> new Who("i" + i, null));
    double connectWall = (System.nanoTime() - t0) / 1e9;
    double connectCpu = s.cpuSeconds() - cpu0;
    double connectGen = Bench.generatorCpuSeconds() - gen0;
    Server.pause(2000); // let the server settle: buffers and lazily allocated state
    long heap1 = s.liveHeapBytes();
    long rss1 = s.rssKb();
    Result r = new Result("idle", o).put("connections", n).put("warm_connections", warm)
        .put("connections_per_s", n / connectWall).put("connect_server_cpu_pct", 100 * connectCpu / connectWall)
        .put("connect_server_cpu_ms_per_connection", connectCpu * 1000 / n)
        .put("connect_generator_cpu_pct", 100 * connectGen / connectWall)
        .put("server_rss_before_mb", rss0 / 1024.0).put("server_rss_after_mb", rss1 / 1024.0)
        .put("rss_kb_per_connection", (rss1 - rss0) / (double) n);
    if (heap0 >= 0 && heap1 >= 0) {
      r.put("live_heap_before_mb", heap0 / 1048576.0).put("live_heap_after_mb", heap1 / 1048576.0)
          .put("live_heap_kb_per_connection", (heap1 - heap0) / 1024.0 / n);
    }
    r.put("open", clients.openConnections()).put("failed_connects", clients.failedConnects.sum()).put("server", s.describe);
    if (!s.target.isNode()) r.put("server_jvm", o.string("jvm", Bench.DEFAULT_SERVER_JVM));
    conns.forEach(WsClients.Conn::close);
    return r;
  }

  /** How loss is counted: Scopecast's offsets (gaps and shortfall), or only what arrived per room. */
  private static String lossCheck(Server s) {
    return s.target.isNode() ? "counts per room" : "offsets";
  }

  /** resume-storm: all subscribers dropped at once while publishing goes on; all come back with resume. */
  static Result resumeStorm(Options o, Server s, WsClients clients) throws Exception {
    int subs = o.integer("subscribers", 1000);
    double rate = o.number("rate", 200);
    String scope = "workspace:bench";
    List<WsClients.Conn> conns = connectAll(s, clients, subs, 200, i -> new Who("s" + i, "bench"));
    Publisher pub = new Publisher(s.target, s.bases, s.apiKey, 64);
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
    List<WsClients.Conn> back = connectAll(s, clients, subs, subs, i -> new Who("s" + i, "bench", resumes.get(i)),
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
