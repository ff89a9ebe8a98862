package io.scopecast.http;

import com.fasterxml.jackson.databind.JsonNode;
import com.github.benmanes.caffeine.cache.AsyncCache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Expiry;
import com.github.benmanes.caffeine.cache.Ticker;
import io.scopecast.actors.auth.ScopeAuthorizer;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.protocol.Json;
import io.scopecast.actors.settings.ScopecastSettings;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.stream.Materializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The authorization hook of §9: {@code POST <hook-url> {"user","scope","workspace"}} answered
 * {@code {"allow":true|false}}, through pekko-http's client. Decisions are cached (Caffeine,
 * bounded): allows for {@code hook.allow-ttl}, denials for the shorter {@code hook.deny-ttl};
 * identical questions in flight share one request.
 *
 * <p>It fails closed: a hook that is down, slow (over {@code hook.timeout}), answers anything but
 * 200 with a boolean {@code allow}, or is asked more than {@code hook.max-in-flight} questions at
 * once gives {@link Decision#UNAVAILABLE}, never an allow, and that answer is not cached.
 */
public final class HookAuthorizer implements ScopeAuthorizer {
  private static final Logger log = LoggerFactory.getLogger(HookAuthorizer.class);
  private static final long MAX_ANSWER_BYTES = 64 * 1024;

  private record Question(String user, String scope, String workspace) {}

  private final ActorSystem<?> system;
  private final Materializer materializer;
  private final ScopecastSettings.Auth auth;
  private final ScopecastMetrics metrics;
  private final AsyncCache<Question, Decision> decisions;
  private final AtomicInteger inFlight = new AtomicInteger();

  public HookAuthorizer(ActorSystem<?> system, ScopecastSettings.Auth auth, ScopecastMetrics metrics, Ticker ticker) {
    this.system = system;
    this.materializer = Materializer.matFromSystem(system);
    this.auth = auth;
    this.metrics = metrics;
    long allowNanos = auth.hook().allowTtl().toNanos();
    long denyNanos = auth.hook().denyTtl().toNanos();
    this.decisions = Caffeine.newBuilder()
        .maximumSize(auth.hook().cacheSize())
        .ticker(ticker)
        .expireAfter(new Expiry<Question, Decision>() {
          @Override
          public long expireAfterCreate(Question q, Decision d, long now) {
            return d == Decision.ALLOW ? allowNanos : d == Decision.FORBIDDEN ? denyNanos : 0;
          }

          @Override
          public long expireAfterUpdate(Question q, Decision d, long now, long current) {
            return expireAfterCreate(q, d, now);
          }

          @Override
          public long expireAfterRead(Question q, Decision d, long now, long current) {
            return current;
          }
        })
        .buildAsync();
  }

  public HookAuthorizer(ActorSystem<?> system, ScopecastSettings.Auth auth, ScopecastMetrics metrics) {
    this(system, auth, metrics, Ticker.systemTicker());
  }

  @Override
  public CompletionStage<Decision> authorize(Request r) {
    Question q = new Question(r.user().user(), r.scope().toString(), r.workspace());
    CompletableFuture<Decision> cached = decisions.getIfPresent(q);
    if (cached != null && cached.isDone() && !cached.isCompletedExceptionally()) {
      metrics.hookRequests.labelValues(cached.join() == Decision.ALLOW ? "cache_allow" : "cache_deny").inc();
      return cached;
    }
    return decisions.get(q, (question, executor) -> ask(question));
  }

  private CompletableFuture<Decision> ask(Question q) {
    if (inFlight.incrementAndGet() > auth.hook().maxInFlight()) {
      inFlight.decrementAndGet();
      metrics.hookRequests.labelValues("overloaded").inc();
      return CompletableFuture.completedFuture(Decision.UNAVAILABLE);
    }
    long started = System.nanoTime();
    String body = Json.object(g -> {
      g.writeStringField("user", q.user());
      g.writeStringField("scope", q.scope());
      if (q.workspace() == null) g.writeNullField("workspace");
      else g.writeStringField("workspace", q.workspace());
    });
    HttpRequest request = HttpRequest.POST(auth.hookUrl()).withEntity(ContentTypes.APPLICATION_JSON, body);
    CompletableFuture<Decision> answer;
    try {
      answer = Http.get(system).singleRequest(request).thenCompose(this::decide).toCompletableFuture();
    } catch (RuntimeException e) { // e.g. a malformed hook URL
      answer = CompletableFuture.failedFuture(e);
    }
    return answer
        .completeOnTimeout(null, auth.hook().timeout().toMillis(), TimeUnit.MILLISECONDS)
        .handle((d, err) -> {
          inFlight.decrementAndGet();
          metrics.hookLatency.observe((System.nanoTime() - started) / 1e9);
          if (err != null || d == null) {
            metrics.hookRequests.labelValues(err != null ? "error" : "timeout").inc();
            log.warn("authorization hook {} for scope {}: refused as unavailable",
                err != null ? "failed (" + err.getClass().getSimpleName() + ")" : "timed out", q.scope());
            return Decision.UNAVAILABLE;
          }
          metrics.hookRequests.labelValues(d == Decision.ALLOW ? "allow" : d == Decision.FORBIDDEN ? "deny" : "error").inc();
          return d;
        });
  }

  private CompletionStage<Decision> decide(HttpResponse response) {
    if (response.status().intValue() != 200) {
      response.discardEntityBytes(materializer);
      return CompletableFuture.completedFuture(Decision.UNAVAILABLE);
    }
    return response.entity().toStrict(auth.hook().timeout().toMillis(), MAX_ANSWER_BYTES, materializer)
        .thenApply(strict -> {
          try {
            JsonNode allow = Json.parse(strict.getData().utf8String()).get("allow");
            if (allow == null || !allow.isBoolean()) return Decision.UNAVAILABLE;
            return allow.booleanValue() ? Decision.ALLOW : Decision.FORBIDDEN;
          } catch (Exception e) {
            return Decision.UNAVAILABLE;
          }
        });
  }
}
