package io.scopecast.actors.scope;

import io.scopecast.actors.CborSerializable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * One per node: carries a scope's state (epoch, last offset, recent history, idempotency keys)
 * from the node that hands the scope off (rebalance, rolling restart) to whichever node owns it
 * next, so that moving a scope neither changes its epoch nor loses its history.
 *
 * <p>A {@link ScopeEntity} that is handed off gives its state to its node's {@code ScopeHandoff},
 * which sends it to every node's {@code ScopeHandoff} and answers once all have confirmed; only
 * then does the entity stop and sharding complete the hand-off. The next owner's entity is
 * therefore created after its node holds the state, and takes it from there before handling
 * anything. Taking it makes every other node forget its copy; copies not taken expire after
 * {@link #KEEP_FOR}. A node that crashes hands nothing off: its scopes start a new epoch
 * (without Redis) and their subscribers are told to resync.
 */
public final class ScopeHandoff extends AbstractBehavior<ScopeHandoff.Command> {

  public static final ServiceKey<Command> KEY = ServiceKey.create(Command.class, "scopecast-scope-handoff");

  /** How long a node keeps a state nobody took. */
  public static final Duration KEEP_FOR = Duration.ofSeconds(30);

  private static final Duration CONFIRM_WITHIN = Duration.ofSeconds(3);
  private static final Duration ASK_PEERS_WITHIN = Duration.ofSeconds(1);
  /**
   * Only a node that started this recently asks the other nodes for a state it does not hold: a
   * giver knew every node that had been up for a while, and asking on every start of a new scope
   * would cost a round trip to every node.
   */
  private static final Duration NEWCOMER_FOR = Duration.ofSeconds(60);

  public sealed interface Command {}

  /** What survives a move of a scope: where its next owner starts. {@code id} tells copies of one hand-off apart. */
  public record ScopeState(String id, String scope, ScopeStart.State start) implements CborSerializable {}

  /** From the local entity being handed off: send {@code state} to every node; answered when they hold it. */
  public record Give(ScopeState state, ActorRef<Given> replyTo) implements Command {}

  public record Given(int nodes) {}

  /** From a local entity that starts: the state handed off for {@code scope}, if any. */
  public record Take(String scope, ActorRef<Taken> replyTo) implements Command {}

  /**
   * {@code state} is null when nothing was handed off. {@code redisSuspect}: some owner of the scope
   * failed to write to Redis, so what Redis holds for it may miss events and must not be continued.
   */
  public record Taken(ScopeState state, boolean redisSuspect) {}

  /**
   * From a local entity: its scope's Redis history may miss events (a write failed), or no longer
   * (a new epoch started there). Every node is told (see {@link Taken#redisSuspect}).
   */
  public record MarkRedisSuspect(String scope, boolean suspect) implements Command {}

  /** Between nodes: the news of a {@link MarkRedisSuspect}. */
  public record RedisSuspect(String scope, boolean suspect) implements Command, CborSerializable {}

  /** Between nodes: keep this state for its next owner. */
  public record Keep(ScopeState state, ActorRef<Kept> replyTo) implements Command, CborSerializable {}

  public record Kept(String id) implements CborSerializable {}

  /** Between nodes: give up your copy for {@code scope}, if any (asked when the next owner has none). */
  public record Surrender(String scope, ActorRef<Surrendered> replyTo) implements Command, CborSerializable {}

  public record Surrendered(ScopeState state) implements CborSerializable {}

  /** Between nodes: the state with this id was taken; drop the copy. */
  public record Forget(String scope, String id) implements Command, CborSerializable {}

  private record Peers(Set<ActorRef<Command>> peers) implements Command {}

  private record Expire(String scope, String id) implements Command {}

  public static Behavior<Command> create() {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new ScopeHandoff(ctx, timers)));
  }

  private final TimerScheduler<Command> timers;
  private final Map<String, ScopeState> kept = new HashMap<>();
  /** Scopes whose Redis history may have a hole (an owner failed to write), until a new epoch starts there. */
  private final Set<String> redisSuspects = new HashSet<>();
  private Set<ActorRef<Command>> peers = new HashSet<>();
  private final long startedAt = System.nanoTime();

  private ScopeHandoff(ActorContext<Command> ctx, TimerScheduler<Command> timers) {
    super(ctx);
    this.timers = timers;
    peers.add(ctx.getSelf());
    ctx.getSystem().receptionist().tell(Receptionist.register(KEY, ctx.getSelf()));
    ActorRef<Receptionist.Listing> listings = ctx.messageAdapter(Receptionist.Listing.class,
        l -> new Peers(l.getServiceInstances(KEY)));
    ctx.getSystem().receptionist().tell(Receptionist.subscribe(KEY, listings));
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Give.class, this::onGive)
        .onMessage(Take.class, this::onTake)
        .onMessage(Keep.class, this::onKeep)
        .onMessage(MarkRedisSuspect.class, m -> {
          RedisSuspect news = new RedisSuspect(m.scope(), m.suspect());
          for (ActorRef<Command> peer : peers) peer.tell(news);
          return this;
        })
        .onMessage(RedisSuspect.class, m -> {
          if (m.suspect()) redisSuspects.add(m.scope());
          else redisSuspects.remove(m.scope());
          return this;
        })
        .onMessage(Surrender.class, sr -> {
          sr.replyTo().tell(new Surrendered(kept.remove(sr.scope())));
          return this;
        })
        .onMessage(Forget.class, f -> {
          ScopeState s = kept.get(f.scope());
          if (s != null && s.id().equals(f.id())) kept.remove(f.scope());
          return this;
        })
        .onMessage(Expire.class, e -> {
          ScopeState s = kept.get(e.scope());
          if (s != null && s.id().equals(e.id())) kept.remove(e.scope());
          return this;
        })
        .onMessage(Peers.class, p -> {
          peers = new HashSet<>(p.peers());
          peers.add(getContext().getSelf());
          return this;
        })
        .build();
  }

  private Behavior<Command> onGive(Give g) {
    List<CompletableFuture<Kept>> confirmations = new ArrayList<>();
    for (ActorRef<Command> peer : peers) {
      CompletionStage<Kept> c = AskPattern.ask(peer, replyTo -> new Keep(g.state(), replyTo), CONFIRM_WITHIN,
          getContext().getSystem().scheduler());
      confirmations.add(c.toCompletableFuture().exceptionally(e -> null));
    }
    int n = confirmations.size();
    CompletableFuture.allOf(confirmations.toArray(CompletableFuture[]::new))
        .whenComplete((v, e) -> g.replyTo().tell(new Given(n)));
    return this;
  }

  private Behavior<Command> onKeep(Keep k) {
    kept.put(k.state().scope(), k.state());
    timers.startSingleTimer("expire:" + k.state().scope(), new Expire(k.state().scope(), k.state().id()), KEEP_FOR);
    k.replyTo().tell(new Kept(k.state().id()));
    return this;
  }

  /**
   * The local copy normally is there (the giver waited for every node it knew). A node that joined
   * just before the hand-off may not have been known to the giver: such a newcomer asks the other
   * nodes.
   */
  private Behavior<Command> onTake(Take t) {
    ScopeState s = kept.remove(t.scope());
    List<ActorRef<Command>> others = peers.stream().filter(p -> !p.equals(getContext().getSelf())).toList();
    boolean newcomer = System.nanoTime() - startedAt < NEWCOMER_FOR.toNanos();
    if (s != null || others.isEmpty() || !newcomer) {
      if (s != null) {
        Forget forget = new Forget(s.scope(), s.id());
        others.forEach(peer -> peer.tell(forget));
      }
      t.replyTo().tell(new Taken(s, redisSuspects.contains(t.scope())));
      return this;
    }
    List<CompletableFuture<Surrendered>> answers = new ArrayList<>();
    for (ActorRef<Command> peer : others) {
      answers.add(AskPattern.<Command, Surrendered>ask(peer, replyTo -> new Surrender(t.scope(), replyTo), ASK_PEERS_WITHIN,
          getContext().getSystem().scheduler()).toCompletableFuture().exceptionally(e -> new Surrendered(null)));
    }
    boolean suspect = redisSuspects.contains(t.scope());
    CompletableFuture.allOf(answers.toArray(CompletableFuture[]::new)).whenComplete((v, e) -> t.replyTo().tell(
        new Taken(answers.stream().map(a -> a.join().state()).filter(java.util.Objects::nonNull).findFirst().orElse(null),
            suspect)));
    return this;
  }
}
