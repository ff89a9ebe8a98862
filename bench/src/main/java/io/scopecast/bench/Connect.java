package io.scopecast.bench;

import com.auth0.jwt.JWT;
import com.auth0.jwt.algorithms.Algorithm;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.IntFunction;
import java.util.function.IntUnaryOperator;
import java.util.function.ObjIntConsumer;

/** Opening the clients of a run on any target, and the counters the workloads wait on. */
final class Connect {
  private Connect() {}

  /**
   * Who one client is: its user, the workspace it subscribes to (null: only its user scope) and,
   * on Scopecast, its resume object (null: none). The same on every target: a comparison server
   * puts the client in the rooms {@code user:USER} and {@code workspace:WORKSPACE}.
   */
  record Who(String user, String workspace, String resume) {
    Who(String user, String workspace) {
      this(user, workspace, null);
    }
  }

  static String tokenFor(Server s, String user, String workspace) {
    return JWT.create().withSubject(user).withClaim("workspaces", List.of(workspace))
        .withExpiresAt(Instant.now().plus(Duration.ofHours(2))).sign(Algorithm.HMAC256(s.secret));
  }

  static String connectFrame(String token, String workspace, String resume) {
    return "{\"type\":\"connect\",\"token\":\"" + token + "\"" + (workspace == null ? "" : ",\"workspace\":\"" + workspace + "\"")
        + (resume == null ? "" : ",\"resume\":" + resume) + "}";
  }

  /** How {@code who} joins on the server's target, through node {@code node} of the server. */
  static Target.Hello hello(Server s, int node, Who who) {
    if (s.target.isNode()) {
      if (who.resume() != null) throw new IllegalArgumentException(s.target.title + " has no resume");
      return Target.Hello.node(s.target, s.bases.get(node % s.bases.size()), who.user(), who.workspace());
    }
    String token = tokenFor(s, who.user(), who.workspace() == null ? "bench" : who.workspace());
    return Target.Hello.scopecast(s.ws(node), connectFrame(token, who.workspace(), who.resume()));
  }

  /** Opens {@code n} connections (at most {@code parallel} handshakes at a time), spread over the nodes. */
  static List<WsClients.Conn> connectAll(Server s, WsClients clients, int n, int parallel, IntFunction<Who> whoOf) {
    return connectAll(s, clients, n, parallel, whoOf, (c, i) -> { });
  }

  /**
   * As above; {@code opened} runs for each connection before its handshake can complete. A
   * connection that fails is tried again (up to 5 times, after 1 s), as a client library would.
   */
  static List<WsClients.Conn> connectAll(Server s, WsClients clients, int n, int parallel, IntFunction<Who> whoOf,
      ObjIntConsumer<WsClients.Conn> opened) {
    List<WsClients.Conn> conns = connectOnce(s, clients, n, parallel, whoOf, opened, i -> i);
    for (int attempt = 1; attempt <= 5; attempt++) {
      List<Integer> failed = new ArrayList<>();
      for (int i = 0; i < conns.size(); i++) if (conns.get(i).connected.isCompletedExceptionally()) failed.add(i);
      if (failed.isEmpty()) break;
      clients.failedConnects.add(failed.size());
      System.err.println("warning: " + failed.size() + " connections failed; trying them again");
      Server.pause(1000);
      List<WsClients.Conn> again = connectOnce(s, clients, failed.size(), parallel, k -> whoOf.apply(failed.get(k)),
          (c, k) -> opened.accept(c, failed.get(k)), failed::get);
      for (int k = 0; k < failed.size(); k++) conns.set(failed.get(k), again.get(k));
    }
    return conns;
  }

  private static List<WsClients.Conn> connectOnce(Server s, WsClients clients, int n, int parallel, IntFunction<Who> whoOf,
      ObjIntConsumer<WsClients.Conn> opened, IntUnaryOperator slot) {
    List<WsClients.Conn> conns = new ArrayList<>(n);
    Semaphore inFlight = new Semaphore(parallel);
    List<CompletableFuture<String>> all = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      inFlight.acquireUninterruptibly();
      InetSocketAddress local = new InetSocketAddress("127.0.0." + (1 + slot.applyAsInt(i) / 25_000), 0);
      WsClients.Conn c = clients.open(s.target, hello(s, slot.applyAsInt(i), whoOf.apply(i)), local);
      opened.accept(c, i);
      conns.add(c);
      all.add(c.connected.whenComplete((v, e) -> inFlight.release()).exceptionally(e -> null));
    }
    CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).orTimeout(300, TimeUnit.SECONDS).join();
    return conns;
  }

  /** Waits until {@code done} holds or the timeout passes (polls: the figures are counters). */
  static boolean await(BooleanSupplier done, Duration timeout) {
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
}
