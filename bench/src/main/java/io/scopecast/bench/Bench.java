package io.scopecast.bench;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The Scopecast load generator: {@code java -jar bench/target/scopecast-bench.jar WORKLOAD [options]}.
 * Each run starts the server jar itself (or targets {@code --url}), prints one JSON line (also
 * appended to {@code --out}) and a human summary. {@code --target socketio|ws} measures one of the
 * comparison servers of bench/servers/ instead; {@code --targets scopecast,socketio,ws} runs the
 * workload on each in turn and prints the ratios of Scopecast's figures to theirs. See
 * docs/benchmarks.md.
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
        publish       the publish path: 1 subscriber, --rate 1500 publishes/s (--rate 0: as fast as a --window 64 allows),
                      --events 20000 after --warmup 5000; --batch 100: that many events per POST /api/batch (Scopecast)
        rooms         --connections 5000, each in its user scope and one of --rooms 50; --rate 500 random publishes/s, --events 5000
        idle          --connections 10000 idle connections (--connections 50000 for the big run): RSS and heap per connection
        resume-storm  --subscribers 1000 dropped at once while --rate 200 publishing goes on; all reconnect with resume
        cluster       fanout over --nodes 3 local nodes (deploy/local/cluster.sh); subscribers spread, publishes through node 1
        sweep         fanout at each of --rates 50,100,200,400,800 on one server
        chart         --in FILE --out PNG: latency percentiles vs publish rate, from the fanout/sweep runs in FILE
        report        --in FILE --doc docs/benchmarks.md [--section table|comparison]: rewrite a table of figures
                      (newest run per label; comparison: Scopecast beside the other targets, with ratios)
      options: --redis (start redis-server and use it), --jar app/target/scopecast.jar, --jvm "server JVM flags",
               --server-cpus 0 --client-cpus 1 (taskset), --client-threads 1, --out bench/results/results.jsonl,
               --label NAME, --url http://host:port[,…] --secret S --api-key K (an already running server)
      targets: --target scopecast|socketio|ws (default scopecast; fanout, saturate, rooms, idle, sweep),
               --targets scopecast,socketio,ws (each in turn, then the ratios), --node node, --node-flags "…",
               --servers bench/servers (install their packages with bench/servers/install.sh),
               idle: --warm-connections 1000 (a warm-up round before the timed one)""";

  private Bench() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 0 || args[0].equals("--help") || args[0].equals("help")) {
      System.out.println(USAGE);
      return;
    }
    String workload = args[0];
    Options o = new Options(args, 1);
    Path out = Path.of(o.string("out", "bench/results/results.jsonl"));
    switch (workload) {
      case "chart" -> Report.chart(Path.of(o.string("in", out.toString())), Path.of(o.string("out-png", o.string("png", "docs/benchmarks-latency.png"))));
      case "report" -> Report.table(Path.of(o.string("in", out.toString())), Path.of(o.string("doc", "docs/benchmarks.md")),
          o.string("section", "table"));
      default -> {
        if (o.has("client-cpus")) pinSelf(o.string("client-cpus", "1"));
        // the same workload on each target in turn, each with a server of its own pinned the same way
        List<Target> targets = Target.list(o.string("targets", o.string("target", Target.SCOPECAST.id)));
        List<Result> results = new ArrayList<>();
        Options each = targets.size() > 1 ? o.with("comparison", java.time.Instant.now().toString()) : o;
        for (int k = 0; k < targets.size(); k++) {
          if (k > 0) Server.pause(1000L * o.integer("pause", 3)); // the previous run's sockets close
          results.addAll(run(workload, each.without("targets").with("target", targets.get(k).id), out));
        }
        if (targets.size() > 1) System.out.println(Comparison.console(results));
      }
    }
    System.exit(0);
  }

  /** One workload on one target (the {@code target} option); the results it emitted. */
  private static List<Result> run(String workload, Options o, Path out) throws Exception {
    Target target = Target.of(o);
    boolean everywhere = List.of("fanout", "saturate", "publish", "rooms", "idle", "sweep").contains(workload);
    if (target.isNode() && (!everywhere || o.flag("redis"))) {
      throw new IllegalArgumentException(workload + (o.flag("redis") ? " with Redis" : "") + " runs on Scopecast only, not on " + target.title);
    }
    List<Result> results = new ArrayList<>();
    switch (workload) {
      case "fanout" -> withServer(o, 1, (s, c) -> results.add(Workloads.fanout(o, s, c, o.number("rate", 200), "fanout").emit(out)));
      case "saturate" -> withServer(o, 1, (s, c) -> results.add(Workloads.fanout(o, s, c, 0, "saturate").emit(out)));
      case "publish" -> {
        // what one publish costs: with one subscriber every delivery is one publish
        Options one = o.has("subscribers") ? o : o.with("subscribers", "1");
        Options events = one.has("events") ? one : one.with("events", "20000");
        Options each = events.has("warmup") ? events : events.with("warmup", "5000"); // the JIT, on one core
        double rate = o.number("rate", 1500);
        Options windowed = rate > 0 || o.has("window") ? each : each.with("window", "64");
        withServer(windowed, 1, (s, c) -> results.add(Workloads.fanout(windowed, s, c, rate, "publish").emit(out)));
      }
      case "cluster" -> withServer(o, o.integer("nodes", 3), (s, c) -> {
        // nodes that joined within the last minute ask each other for handed-off scope state when a
        // scope starts (ScopeHandoff): measure the cluster in its steady state
        Server.pause(1000L * o.integer("settle", 65));
        results.add(Workloads.fanout(o, s, c, o.number("rate", 200), "cluster").emit(out));
      });
      case "rooms" -> withServer(o, 1, (s, c) -> results.add(Workloads.rooms(o, s, c).emit(out)));
      case "idle" -> {
        Options idle = o.has("jvm") ? o : o.with("jvm", IDLE_SERVER_JVM);
        withServer(idle, 1, (s, c) -> results.add(Workloads.idle(idle, s, c).emit(out)));
      }
      case "resume-storm" -> withServer(o, 1, (s, c) -> results.add(Workloads.resumeStorm(o, s, c).emit(out)));
      case "sweep" -> withServer(o, 1, (s, c) -> {
        for (String r : o.string("rates", "50,100,200,400,800").split(",")) {
          Options each = o.with("label", "fanout@" + r.trim() + (o.flag("redis") ? "+redis" : "")).with("rate", r.trim());
          results.add(Workloads.fanout(each, s, c, Double.parseDouble(r.trim()), "fanout").emit(out));
        }
      });
      default -> {
        System.err.println("unknown workload " + workload + "\n" + USAGE);
        System.exit(2);
      }
    }
    return results;
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
}
