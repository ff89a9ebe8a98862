package io.scopecast.http;

import io.scopecast.actors.scope.ScopeEntity;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * One actor per node takes the answers to all the node's publishes: each publish is numbered,
 * its future waits here until the scope's answer with that number arrives (or the timeout), so a
 * publish costs no temporary actor as an {@code ask} would.
 */
final class PublishReplies {
  private final ConcurrentHashMap<Long, CompletableFuture<ScopeEntity.PublishResult>> waiting = new ConcurrentHashMap<>();
  private final AtomicLong requests = new AtomicLong();
  private final ActorRef<ScopeEntity.PublishResult> ref;

  PublishReplies(ActorSystem<?> system, String name) {
    this.ref = system.systemActorOf(Behaviors.receive(ScopeEntity.PublishResult.class)
        .onAnyMessage(answer -> {
          CompletableFuture<ScopeEntity.PublishResult> f = waiting.remove(answer.request());
          if (f != null) f.complete(answer); // a late answer (after the timeout) finds nothing
          return Behaviors.same();
        })
        .build(), name, Props.empty());
  }

  /** A numbered publish whose answer is awaited for at most {@code within}. */
  record Expected(long request, ActorRef<ScopeEntity.PublishResult> replyTo, CompletableFuture<ScopeEntity.PublishResult> answer) {}

  Expected expect(Duration within) {
    long request = requests.incrementAndGet();
    CompletableFuture<ScopeEntity.PublishResult> answer = new CompletableFuture<>();
    waiting.put(request, answer);
    CompletableFuture<ScopeEntity.PublishResult> forgotten = answer.orTimeout(within.toMillis(), TimeUnit.MILLISECONDS)
        .whenComplete((r, e) -> {
          if (e != null) waiting.remove(request); // not answered in time
        });
    return new Expected(request, ref, forgotten);
  }

  /** Answers still awaited (for tests: none are left behind). */
  int waiting() {
    return waiting.size();
  }
}
