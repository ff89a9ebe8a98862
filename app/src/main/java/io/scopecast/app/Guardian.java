package io.scopecast.app;

import io.scopecast.actors.NodeFanout;
import io.scopecast.actors.auth.ClaimsAuthorizer;
import io.scopecast.actors.auth.ScopeAuthorizer;
import io.scopecast.actors.auth.TokenMinter;
import io.scopecast.actors.auth.TokenVerifier;
import io.scopecast.actors.connection.ConnectionActor;
import io.scopecast.actors.history.DurableHistory;
import io.scopecast.actors.history.RedisHistory;
import io.scopecast.actors.metrics.ScopecastMetrics;
import io.scopecast.actors.protocol.ClientFrameDecoder;
import io.scopecast.actors.scope.ScopeEntity;
import io.scopecast.actors.scope.ScopeHandoff;
import io.scopecast.actors.settings.ScopecastSettings;
import io.scopecast.http.ApiRoutes;
import io.scopecast.http.DemoRoutes;
import io.scopecast.http.HealthRoutes;
import io.scopecast.http.HookAuthorizer;
import io.scopecast.http.HttpServer;
import io.scopecast.http.WebSocketEndpoint;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.server.Route;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The root of a Scopecast node: wires sharding, the node's fanout and the HTTP server, then does
 * nothing else. On shutdown (SIGTERM) it stops accepting sockets, closes the open ones with 1001
 * spread over the drain period, and lets Pekko hand off shards and leave the cluster.
 */
public final class Guardian {
  private static final Logger log = LoggerFactory.getLogger(Guardian.class);

  /** Messages the guardian handles. */
  public sealed interface Command {}

  private record Bound(ServerBinding binding) implements Command {}

  private record BindFailed(Throwable cause) implements Command {}

  /** Asks for the node's pieces, e.g. for tests. */
  public record GetNode(ActorRef<Node> replyTo) implements Command {}

  /** What a running node exposes to tests and tools. */
  public record Node(InetSocketAddress httpAddress, ActorRef<NodeFanout.Command> fanout, ScopecastMetrics metrics) {}

  private Guardian() {}

  /** A node that stops its actor system when it cannot listen. */
  public static Behavior<Command> create(ScopecastSettings settings) {
    return create(settings, () -> { });
  }

  /** @param onBindFailure runs when the HTTP port cannot be bound (the command line exits non-zero) */
  public static Behavior<Command> create(ScopecastSettings settings, Runnable onBindFailure) {
    return Behaviors.withStash(100, stash -> Behaviors.setup(ctx -> {
      ActorSystem<?> system = ctx.getSystem();
      ScopecastMetrics metrics = new ScopecastMetrics();
      String nodeId = settings.nodeId();
      TokenVerifier tokens = new TokenVerifier(settings.auth().jwtSecret(), settings.auth().jwtPublicKey(),
          settings.auth().clockSkew());
      ScopeAuthorizer hook = settings.auth().hasHook() ? new HookAuthorizer(system, settings.auth(), metrics) : null;
      ScopeAuthorizer authorizer = new ClaimsAuthorizer(tokens, hook);
      ActorRef<NodeFanout.Command> fanout = ctx.spawn(NodeFanout.create(settings), "fanout");
      ActorRef<ScopeHandoff.Command> handoff = ctx.spawn(ScopeHandoff.create(), "scope-handoff");

      final DurableHistory durable;
      if (!settings.redis().enabled()) {
        durable = DurableHistory.memoryOnly();
      } else {
        RedisHistory redis = RedisHistory.connect(settings.redis(), metrics);
        CoordinatedShutdown.get(system).addTask(CoordinatedShutdown.PhaseBeforeActorSystemTerminate(), "scopecast-redis",
            () -> CompletableFuture.runAsync(redis::close).thenApply(v -> Done.getInstance()));
        durable = redis;
      }
      ScopeEntity.initSharding(system, new ScopeEntity.Deps(settings, metrics, nodeId, Clock.systemUTC(), handoff, durable));
      ClusterSharding sharding = ClusterSharding.get(system);
      Function<String, EntityRef<ScopeEntity.Command>> scopes = s -> sharding.entityRefFor(ScopeEntity.TYPE_KEY, s);

      ConnectionActor.Deps deps = new ConnectionActor.Deps(settings, metrics, nodeId, scopes::apply, fanout, tokens,
          authorizer, new ClientFrameDecoder(settings::knowsType));
      HealthRoutes health = new HealthRoutes(system, nodeId, metrics, durable::state);
      Route[] demo = {};
      if (settings.demo()) {
        if (settings.auth().jwtSecret().isEmpty()) {
          log.warn("the demo needs an HS256 secret (scopecast.auth.jwt-secret); /demo stays off");
        } else {
          log.warn("demo mode: /demo and its token-minting endpoints are on; never do this in production");
          demo = new Route[] {new DemoRoutes(new TokenMinter(settings.auth().jwtSecret()), tokens, scopes,
              settings.api().timeout()).route()};
        }
      }
      HttpServer server = new HttpServer(new WebSocketEndpoint(system, deps), new ApiRoutes(system, settings, scopes), health, demo);
      ctx.pipeToSelf(server.bind(system, settings.http().host(), settings.http().port()),
          (b, err) -> err != null ? new BindFailed(err) : new Bound(b));

      return Behaviors.receive(Command.class)
          .onMessage(Bound.class, b -> {
            InetSocketAddress a = b.binding().localAddress();
            log.info("Scopecast listening on {}:{} (node {})", settings.http().host(), a.getPort(), nodeId);
            registerShutdown(system, b.binding(), fanout, settings);
            return stash.unstashAll(running(b.binding(), fanout, metrics));
          })
          .onMessage(BindFailed.class, f -> {
            log.error("cannot listen on {}:{}: {}", settings.http().host(), settings.http().port(), f.cause().getMessage());
            onBindFailure.run();
            throw new IllegalStateException("HTTP bind failed", f.cause());
          })
          .onMessage(GetNode.class, g -> {
            stash.stash(g);
            return Behaviors.same();
          })
          .build();
    }));
  }

  private static Behavior<Command> running(ServerBinding binding, ActorRef<NodeFanout.Command> fanout,
      ScopecastMetrics metrics) {
    return Behaviors.receive(Command.class)
        .onMessage(GetNode.class, g -> {
          g.replyTo().tell(new Node(binding.localAddress(), fanout, metrics));
          return Behaviors.same();
        })
        .build();
  }

  /**
   * SIGTERM: stop accepting (service-unbind), close every client with 1001 spread over the drain
   * period and wait for them (service-requests-done), then Pekko hands off shards and leaves.
   */
  private static void registerShutdown(ActorSystem<?> system, ServerBinding binding,
      ActorRef<NodeFanout.Command> fanout, ScopecastSettings settings) {
    CoordinatedShutdown cs = CoordinatedShutdown.get(system);
    cs.addTask(CoordinatedShutdown.PhaseServiceUnbind(), "scopecast-unbind", binding::unbind);
    cs.addTask(CoordinatedShutdown.PhaseServiceRequestsDone(), "scopecast-close-clients", () -> {
      Duration period = settings.drainPeriod();
      Duration wait = period.plus(settings.connection().closeGrace()).plusSeconds(1);
      CompletionStage<NodeFanout.Drained> drained = AskPattern.ask(fanout,
          replyTo -> new NodeFanout.DrainConnections(period, replyTo), wait, system.scheduler());
      return drained.thenCompose(d -> waitForConnections(system, fanout, System.nanoTime() + wait.toNanos()))
          .exceptionally(e -> Done.getInstance());
    });
    cs.addTask(CoordinatedShutdown.PhaseServiceStop(), "scopecast-stop-http",
        () -> binding.terminate(Duration.ofSeconds(1)).thenApply(t -> Done.getInstance()));
  }

  private static CompletionStage<Done> waitForConnections(ActorSystem<?> system, ActorRef<NodeFanout.Command> fanout,
      long deadlineNanos) {
    return AskPattern.<NodeFanout.Command, Integer>ask(fanout, NodeFanout.CountConnections::new, Duration.ofSeconds(1),
            system.scheduler())
        .thenCompose(n -> {
          if (n == 0 || System.nanoTime() > deadlineNanos) return CompletableFuture.completedFuture(Done.getInstance());
          CompletableFuture<Done> later = new CompletableFuture<>();
          system.scheduler().scheduleOnce(Duration.ofMillis(100),
              () -> waitForConnections(system, fanout, deadlineNanos).whenComplete((d, e) -> later.complete(Done.getInstance())),
              system.executionContext());
          return later;
        });
  }

}
