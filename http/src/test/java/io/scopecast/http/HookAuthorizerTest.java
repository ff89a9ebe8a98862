package io.scopecast.http;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.github.benmanes.caffeine.cache.Ticker;
import io.scopecast.actors.auth.ScopeAuthorizer;
import io.scopecast.actors.auth.ScopeAuthorizer.Decision;
import io.scopecast.actors.auth.UserClaims;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.settings.ScopecastSettings;
import io.scopecast.actors.testing.TestSettings;
import io.scopecast.http.testing.HookBackend;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The authorization hook against a real HTTP backend: the app's rules, the cache, and failing closed. */
class HookAuthorizerTest {
  private static final ActorTestKit testKit = ActorTestKit.create();

  @AfterAll
  static void shutdown() {
    testKit.shutdownTestKit();
  }

  private final HookBackend backend = new HookBackend();
  private final AtomicLong nanos = new AtomicLong();
  private final Ticker ticker = nanos::get;
  private final ScopecastMetrics metrics = new ScopecastMetrics();

  @AfterEach
  void stopBackend() {
    backend.close();
  }

  private HookAuthorizer hook(String url, Object... more) {
    Object[] all = new Object[more.length + 2];
    all[0] = "scopecast.auth.hook-url";
    all[1] = url;
    System.arraycopy(more, 0, all, 2, more.length);
    ScopecastSettings s = TestSettings.with(all);
    return new HookAuthorizer(testKit.system(), s.auth(), metrics, ticker);
  }

  private static Decision ask(ScopeAuthorizer a, String user, String scope) {
    return a.authorize(new ScopeAuthorizer.Request(new UserClaims(user, Set.of()), ScopeId.of(scope), null, "w1"))
        .toCompletableFuture().join();
  }

  @Test
  void theAppsRulesDecide() {
    HookAuthorizer hook = hook(backend.url());
    assertEquals(Decision.ALLOW, ask(hook, "alice", "chat:c1"), "a chat's creator");
    assertEquals(Decision.FORBIDDEN, ask(hook, "bob", "chat:c1"), "a peer in the same workspace");
    assertEquals(Decision.ALLOW, ask(hook, "bob", "task:t1"), "a member of the task's workspace");
    assertEquals(Decision.FORBIDDEN, ask(hook, "carol", "task:t1"), "someone from another workspace");
    assertEquals(Decision.ALLOW, ask(hook, "alice", "task:t2"), "a chat task: the chat's creator");
    assertEquals(Decision.FORBIDDEN, ask(hook, "bob", "task:t2"), "a chat task: a workspace member who did not create the chat");
    assertEquals(Decision.FORBIDDEN, ask(hook, "mallory", "task:t1"), "a user without a session");
    assertEquals(Decision.FORBIDDEN, ask(hook, "", "task:t1"), "an empty user");
    assertEquals(Decision.FORBIDDEN, ask(hook, "alice", "channel:x"), "anything else");
  }

  @Test
  void decisionsAreCachedAllowsLongerThanDenials() {
    HookAuthorizer hook = hook(backend.url(), "scopecast.auth.hook.allow-ttl", "30s", "scopecast.auth.hook.deny-ttl", "5s");
    ask(hook, "alice", "chat:c1");
    ask(hook, "bob", "chat:c1");
    assertEquals(2, backend.calls());
    ask(hook, "alice", "chat:c1");
    ask(hook, "bob", "chat:c1");
    assertEquals(2, backend.calls(), "both answers came from the cache");

    nanos.addAndGet(Duration.ofSeconds(6).toNanos());
    ask(hook, "alice", "chat:c1");
    assertEquals(2, backend.calls(), "the allow is still cached");
    ask(hook, "bob", "chat:c1");
    assertEquals(3, backend.calls(), "the denial expired");

    nanos.addAndGet(Duration.ofSeconds(30).toNanos());
    ask(hook, "alice", "chat:c1");
    assertEquals(4, backend.calls());
  }

  @Test
  void theSameQuestionInFlightIsAskedOnce() {
    HookAuthorizer hook = hook(backend.url(), "scopecast.auth.hook.timeout", "1s");
    assertEquals(Decision.ALLOW, ask(hook, "bob", "task:t1")); // the client's connection is open
    backend.mode(HookBackend.Mode.HANG);
    ScopeAuthorizer.Request r = new ScopeAuthorizer.Request(new UserClaims("alice", Set.of()), ScopeId.of("chat:c1"), null, null);
    CompletableFuture<Decision> a = hook.authorize(r).toCompletableFuture();
    CompletableFuture<Decision> b = hook.authorize(r).toCompletableFuture();
    assertEquals(Decision.UNAVAILABLE, a.join());
    assertEquals(Decision.UNAVAILABLE, b.join());
    assertEquals(2, backend.calls(), "one call to warm up, one for both questions");
  }

  @Test
  void aHookThatFailsIsNeverAnAllowAndIsNotCached() {
    HookAuthorizer hook = hook(backend.url(), "scopecast.auth.hook.timeout", "1s");
    backend.mode(HookBackend.Mode.FAIL_500);
    assertEquals(Decision.UNAVAILABLE, ask(hook, "alice", "chat:c1"));
    backend.mode(HookBackend.Mode.MALFORMED);
    assertEquals(Decision.UNAVAILABLE, ask(hook, "alice", "chat:c1"));
    backend.mode(HookBackend.Mode.HANG);
    assertEquals(Decision.UNAVAILABLE, ask(hook, "alice", "chat:c1"), "slower than the timeout");
    backend.mode(HookBackend.Mode.NORMAL);
    assertEquals(Decision.ALLOW, ask(hook, "alice", "chat:c1"), "failures were not cached");
  }

  @Test
  void aHookThatIsDownIsUnavailable() {
    String url = backend.url();
    backend.close();
    assertEquals(Decision.UNAVAILABLE, ask(hook(url, "scopecast.auth.hook.timeout", "1s"), "alice", "chat:c1"));
    assertEquals(1.0, metrics.hookRequests.labelValues("error").get() + metrics.hookRequests.labelValues("timeout").get());
  }
}
