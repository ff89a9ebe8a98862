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

  Publisher(Target target, List<String> bases, String apiKey, int window) {
    this.target = target;
    this.bases = bases;
    this.apiKey = apiKey;
    this.window = new Semaphore(window);
  }

  static String payload() {
    return "{\"t\":" + System.nanoTime() + ",\"p\":\"" + PAD + "\"}";
  }

  /** Sends one publish (waits for a free slot in the window). */
  CompletableFuture<Void> publish(String scope, String event) {
    window.acquireUninterruptibly();
    String body = target.publishBody(scope, event, payload());
    String base = bases.get(next++ % bases.size());
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + target.publishPath())).timeout(Duration.ofSeconds(30));
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
    CompletableFuture<?>[] all = new CompletableFuture<?>[count];
    for (int i = 0; i < count; i++) {
      if (ratePerSecond > 0) {
        long due = start + (long) (i * 1e9 / ratePerSecond);
        long wait = due - System.nanoTime();
        if (wait > 0) java.util.concurrent.locks.LockSupport.parkNanos(wait);
      }
      all[i] = publish(scopeOf.apply(i), "bench");
    }
    CompletableFuture.allOf(all).join();
  }
}
