package io.scopecast.actors.testing;

import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.scope.ScopeEntity;
import java.util.HashMap;
import java.util.Map;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.RecipientRef;
import org.apache.pekko.actor.typed.Terminated;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;

/**
 * A stand-in for the scope shard region in single-JVM behaviour tests: starts a {@link ScopeEntity}
 * per scope on its first message and again after it stopped, as sharding does.
 */
public final class TestScopes {
  private record Routed(String scope, ScopeEntity.Command command) {}

  private record Stop(String scope) {}

  private final ActorTestKit testKit;
  private final ActorRef<Object> router;
  private final Map<String, ActorRef<ScopeEntity.Command>> refs = new java.util.concurrent.ConcurrentHashMap<>();

  public TestScopes(ActorTestKit testKit, ScopeEntity.Deps deps) {
    this.testKit = testKit;
    TestProbe<ClusterSharding.ShardCommand> shard = testKit.createTestProbe();
    this.router = testKit.spawn(routerBehavior(deps, shard.getRef()));
  }

  /** Where a connection sends a scope's commands (an actor that forwards to the scope's current entity). */
  public RecipientRef<ScopeEntity.Command> ref(String scope) {
    return refs.computeIfAbsent(scope, s -> testKit.spawn(Behaviors.<ScopeEntity.Command>receiveMessage(m -> {
      router.tell(new Routed(s, m));
      return Behaviors.same();
    })));
  }

  /** Stops the scope's entity, as a crash of its node would; the next message starts a new one. */
  public void stop(String scope) {
    router.tell(new Stop(scope));
  }

  private static Behavior<Object> routerBehavior(ScopeEntity.Deps deps, ActorRef<ClusterSharding.ShardCommand> shard) {
    return Behaviors.setup(ctx -> {
      Map<String, ActorRef<ScopeEntity.Command>> entities = new HashMap<>();
      return Behaviors.receive(Object.class)
          .onMessage(Routed.class, r -> {
            entities.computeIfAbsent(r.scope(), s -> {
              ActorRef<ScopeEntity.Command> e = ctx.spawnAnonymous(ScopeEntity.create(ScopeId.of(s), deps, shard));
              ctx.watch(e);
              return e;
            }).tell(r.command());
            return Behaviors.same();
          })
          .onMessage(Stop.class, s -> {
            ActorRef<ScopeEntity.Command> e = entities.remove(s.scope());
            if (e != null) ctx.stop(e);
            return Behaviors.same();
          })
          .onSignal(Terminated.class, t -> {
            entities.values().remove(t.getRef());
            return Behaviors.same();
          })
          .build();
    });
  }
}
