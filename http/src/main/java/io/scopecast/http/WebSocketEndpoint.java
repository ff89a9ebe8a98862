package io.scopecast.http;

import io.scopecast.actors.auth.InvalidTokenException;
import io.scopecast.actors.auth.UserClaims;
import io.scopecast.actors.connection.ConnectionActor;
import io.scopecast.actors.connection.Outbound;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.protocol.Utf8;
import io.scopecast.actors.settings.ScopecastSettings;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.http.javadsl.model.AttributeKeys;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.Connection;
import org.apache.pekko.http.javadsl.model.ws.Message;
import org.apache.pekko.http.javadsl.model.ws.TextMessage;
import org.apache.pekko.http.javadsl.model.ws.WebSocketUpgrade;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.StreamLimitReachedException;
import org.apache.pekko.stream.javadsl.Flow;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.typed.javadsl.ActorSink;

/**
 * {@code GET /ws}: authenticates the upgrade (401/403 before upgrading, §2), then wires one socket
 * to one {@link ConnectionActor}: inbound frames are collected (bounded in size and time) and
 * handed to the actor one at a time with acknowledgement; outbound frames come from the actor's
 * {@link Outbound} queue. Query strings and tokens are never logged.
 */
public final class WebSocketEndpoint extends AllDirectives {
  /** A frame that arrives in pieces must be complete within this. */
  private static final Duration FRAME_COLLECT_TIMEOUT = Duration.ofSeconds(10);

  private final ActorSystem<?> system;
  private final ConnectionActor.Deps deps;
  private final Materializer materializer;
  private final int maxFrameBytes;


  public WebSocketEndpoint(ActorSystem<?> system, ConnectionActor.Deps deps) {
    this.system = system;
    this.deps = deps;
    this.materializer = Materializer.matFromSystem(system);
    this.maxFrameBytes = deps.settings().connection().maxFrameBytes();
  }

  public Route route() {
    return path("ws", () -> get(() -> extractRequest(this::upgrade)));
  }

  private Route upgrade(HttpRequest request) {
    String token = bearerToken(request).orElseGet(() -> request.getUri().query().get("token").orElse(null));
    UserClaims claims = null;
    if (token != null) {
      try {
        claims = deps.tokens().verifyUser(token);
      } catch (InvalidTokenException e) {
        return refuse(JsonResponses.error(StatusCodes.UNAUTHORIZED, "unauthorized", "invalid or expired token"));
      }
    }
    String workspace = request.getUri().query().get("workspace").orElse(null);
    if (workspace != null) {
      if (!ScopeId.isValidId(workspace)) return refuse(JsonResponses.badRequest("workspace must be a workspace id"));
      if (claims != null && !claims.grantsWorkspace(workspace)) {
        return refuse(JsonResponses.error(StatusCodes.FORBIDDEN, "forbidden", "the token does not grant this workspace"));
      }
    }
    Optional<WebSocketUpgrade> upgrade = request.getAttribute(AttributeKeys.webSocketUpgrade);
    if (upgrade.isEmpty()) return refuse(JsonResponses.badRequest("expected a WebSocket upgrade request"));
    return complete(upgrade.get().handleMessagesWith(connect(claims, workspace)));
  }

  /** An upgrade refused before upgrading: the answer, then the connection is closed cleanly. */
  private Route refuse(HttpResponse response) {
    return complete(response.addHeader(Connection.create("close")));
  }

  /** Spawns the connection's actor and returns the socket's flow. */
  private Flow<Message, Message, NotUsed> connect(UserClaims claims, String workspace) {
    String connId = "c-" + Long.toString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE, 36);
    ActorRef<ConnectionActor.Command> conn = system.systemActorOf(
        ConnectionActor.create(deps, connId, claims, workspace), connId, Props.empty());
    Sink<ConnectionActor.Incoming, NotUsed> toActor = ActorSink.actorRefWithBackpressure(
        conn,
        ConnectionActor.Received::new,
        ConnectionActor.StreamStarted::new,
        ConnectionActor.StreamAck.INSTANCE,
        ConnectionActor.StreamEnded.INSTANCE,
        ConnectionActor.StreamFailed::new);
    Sink<Message, NotUsed> in = Flow.<Message>create().mapAsync(1, this::collect).to(toActor);
    ScopecastSettings.Connection limits = deps.settings().connection();
    Source<Message, NotUsed> out = Outbound.<Message>source(limits.outboundBuffer(), limits.outboundBufferBytes(), deps.metrics(),
            TextMessage::create)
        .mapMaterializedValue(outbound -> {
          conn.tell(new ConnectionActor.OutboundReady(outbound));
          return NotUsed.getInstance();
        });
    return Flow.fromSinkAndSourceCoupled(in, out);
  }

  /** A whole text frame, or TooLarge / NotText; a frame that arrives in pieces is bounded in size and time. */
  private CompletionStage<ConnectionActor.Incoming> collect(Message m) {
    if (!m.isText()) {
      m.asBinaryMessage().getStreamedData().runWith(Sink.ignore(), materializer);
      return CompletableFuture.completedFuture(ConnectionActor.NotText.INSTANCE);
    }
    TextMessage text = m.asTextMessage();
    if (text.isStrict()) {
      String s = text.getStrictText();
      return CompletableFuture.completedFuture(fits(s, maxFrameBytes) ? new ConnectionActor.Text(s) : ConnectionActor.TooLarge.INSTANCE);
    }
    return text.getStreamedText()
        .limitWeighted(maxFrameBytes, Utf8::encodedLength)
        .completionTimeout(FRAME_COLLECT_TIMEOUT)
        .runFold(new StringBuilder(), StringBuilder::append, materializer)
        .<ConnectionActor.Incoming>thenApply(sb -> new ConnectionActor.Text(sb.toString()))
        .exceptionally(e -> {
          if (unwrap(e) instanceof StreamLimitReachedException) return ConnectionActor.TooLarge.INSTANCE;
          throw new IllegalStateException("incomplete frame", e);
        });
  }

  private static Throwable unwrap(Throwable e) {
    while (e instanceof java.util.concurrent.CompletionException && e.getCause() != null) e = e.getCause();
    return e;
  }

  static boolean fits(String s, int maxBytes) {
    return s.length() * 3L <= maxBytes || Utf8.encodedLength(s) <= maxBytes;
  }

  private static Optional<String> bearerToken(HttpRequest request) {
    return request.getHeader("Authorization")
        .map(h -> h.value().trim())
        .filter(v -> v.regionMatches(true, 0, "Bearer ", 0, 7))
        .map(v -> v.substring(7).trim());
  }
}
