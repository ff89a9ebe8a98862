package io.scopecast.actors.scope;

import io.scopecast.actors.history.DurableHistory;
import io.scopecast.actors.history.Epochs;
import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.history.IdempotencyRecord;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * Where a scope starts: what its previous owner handed off (it moved rather than crashed), else
 * what the durable history holds, else a new epoch. The durable part is budgeted: a Redis that is
 * down or hangs costs a start at most {@code scopecast.redis.timeout}, after which the scope starts
 * a new epoch in memory and writes one to Redis once it is back (§13.9).
 */
public final class ScopeStart {

  /**
   * The state a scope starts from. {@code durableBehind}: the durable history may miss events of
   * this epoch (or could not be reached), so a new epoch must be started there before writing.
   */
  public record State(String epoch, long offset, List<HistoryEntry> history, List<IdempotencyRecord> keys,
      boolean durableBehind) {

    public static State fresh(boolean durableBehind) {
      return new State(Epochs.next(), 0, List.of(), List.of(), durableBehind);
    }
  }

  private static final Duration TAKE_WITHIN = Duration.ofSeconds(5);

  private ScopeStart() {}

  /** @param handoff the node's {@link ScopeHandoff}, or null when scopes never move (tests) */
  public static CompletionStage<State> find(String scope, int historySize, ActorRef<ScopeHandoff.Command> handoff,
      DurableHistory durable, Duration budget, ActorSystem<?> system) {
    CompletionStage<ScopeHandoff.Taken> taken = handoff == null
        ? CompletableFuture.completedFuture(new ScopeHandoff.Taken(null, false))
        : AskPattern.ask(handoff, replyTo -> new ScopeHandoff.Take(scope, replyTo), TAKE_WITHIN, system.scheduler());
    return taken.thenCompose(t -> {
      if (t.state() != null) return CompletableFuture.completedFuture(t.state().start());
      if (!durable.enabled()) return CompletableFuture.completedFuture(State.fresh(false));
      return fromDurable(scope, historySize, durable, t.redisSuspect())
          .orTimeout(budget.toMillis(), TimeUnit.MILLISECONDS)
          .exceptionally(e -> State.fresh(true));
    });
  }

  private static CompletableFuture<State> fromDurable(String scope, int historySize, DurableHistory durable, boolean suspect) {
    if (!durable.isUp()) return CompletableFuture.completedFuture(State.fresh(true));
    if (suspect) return newEpochThere(scope, durable); // an owner failed to write: what is there may have a hole
    return durable.load(scope, historySize).toCompletableFuture()
        .thenCompose(l -> l.epoch() == null ? newEpochThere(scope, durable) : CompletableFuture.completedFuture(loaded(l)));
  }

  private static CompletableFuture<State> newEpochThere(String scope, DurableHistory durable) {
    State s = State.fresh(false);
    return durable.startEpoch(scope, s.epoch()).toCompletableFuture().thenApply(v -> s);
  }

  private static State loaded(DurableHistory.Loaded l) {
    List<IdempotencyRecord> keys = new ArrayList<>(l.keys());
    keys.sort(Comparator.comparingLong(IdempotencyRecord::at));
    return new State(l.epoch(), l.offset(), l.entries(), keys, false);
  }
}
