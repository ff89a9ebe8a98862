package io.scopecast.bench;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntFunction;

/**
 * Publishes through the target's HTTP publish ({@code POST /api/publish} on Scopecast,
 * {@code POST /publish} on the comparison servers) with keep-alive connections and a bounded window of
 * requests in flight, either at a fixed rate or as fast as the window allows. Each payload is about
 * 100 bytes and carries its send time ({@code "t"}, System.nanoTime of this JVM).
 */
final class Publisher {
  private static final String PAD = "x".repeat(72);

  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(10)).build();
  private final List<String> bases;
  private final String apiKey;
  private final Target target;
  private final Semaphore window;
  final LongAdder accepted = new LongAdder();
  final LongAdder failed = new LongAdder();
  private int next;
  /** Events per request: 1, or that many items per {@code POST /api/batch} (Scopecast only). */
  private final int batch;

  Publisher(Target target, List<String> bases, String apiKey, int window) {
    this(target, bases, apiKey, window, 1);
  }

  Publisher(Target target, List<String> bases, String apiKey, int window, int batch) {
    if (batch > 1 && target != Target.SCOPECAST) throw new IllegalArgumentException("--batch runs on Scopecast only");
    this.target = target;
    this.bases = bases;
    this.apiKey = apiKey;
    this.window = new Semaphore(window);
    this.batch = Math.max(1, batch);
  }

  static String payload() {
    return "{\"t\":" + System.nanoTime() + ",\"p\":\"" + PAD + "\"}";
  }

  /** Sends one publish (waits for a free slot in the window). */
  CompletableFuture<Void> publish(String scope, String event) {
    return send(target.publishPath(), target.publishBody(scope, event, payload()));
  }

  /** Sends {@code n} publishes to {@code scope} in one {@code POST /api/batch}. */
  CompletableFuture<Void> publishBatch(String scope, String event, int n) {
    StringBuilder body = new StringBuilder(n * 150).append("{\"items\":[");
    for (int i = 0; i < n; i++) body.append(i == 0 ? "" : ",").append(target.publishBody(scope, event, payload()));
    return send("/api/batch", body.append("]}").toString());
  }

  private CompletableFuture<Void> send(String path, String body) {
    window.acquireUninterruptibly();
    String base = bases.get(next++ % bases.size());
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(30));
    if (target == Target.SCOPECAST) b.header("Authorization", "Bearer " + apiKey);
    HttpRequest r = b.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
    return http.sendAsync(r, HttpResponse.BodyHandlers.discarding()).handle((resp, err) -> {
      window.release();
      if (err == null && resp.statusCode() == 200) accepted.increment();
      else failed.increment();
      return null;
    });
  }

  /**
   * Publishes {@code count} events at {@code ratePerSecond} (0: as fast as the window allows), the
   * scope of each chosen by {@code scopeOf}; returns once all are answered.
   */
  void run(int count, double ratePerSecond, IntFunction<String> scopeOf) {
    long start = System.nanoTime();
    List<CompletableFuture<?>> all = new java.util.ArrayList<>(count / batch + 1);
    for (int i = 0; i < count; i += batch) {
      if (ratePerSecond > 0) {
        long due = start + (long) (i * 1e9 / ratePerSecond);
        long wait = due - System.nanoTime();
        if (wait > 0) java.util.concurrent.locks.LockSupport.parkNanos(wait);
      }
      all.add(batch == 1 ? publish(scopeOf.apply(i), "bench") : publishBatch(scopeOf.apply(i), "bench", Math.min(batch, count - i)));
    }
    CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).join();
  }
}
