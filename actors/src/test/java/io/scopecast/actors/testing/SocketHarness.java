package io.scopecast.actors.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.auth.UserClaims;
import io.scopecast.actors.connection.ConnectionActor;
import io.scopecast.actors.connection.Outbound;
import io.scopecast.actors.protocol.Json;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.SinkQueueWithCancel;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.typed.javadsl.ActorSink;

/**
 * Plays the socket of one {@link ConnectionActor} in behaviour tests: sends frames the way the
 * inbound stream does (waiting for each acknowledgement) and reads what the real {@link Outbound}
 * queue emits, either as fast as it comes or only when the test pulls (a slow client).
 */
public final class SocketHarness {
  public static final String CLOSED = "<socket closed>";

  public final ActorRef<ConnectionActor.Command> conn;
  public final Outbound outbound;
  private final TestProbe<String> frames;
  private final TestProbe<ConnectionActor.StreamAck> acks;
  private final SinkQueueWithCancel<String> slowQueue;
  private final List<JsonNode> seen = new ArrayList<>();

  private SocketHarness(ActorTestKit testKit, ConnectionActor.Deps deps, UserClaims claims, String workspace, boolean slow) {
    Materializer mat = Materializer.matFromSystem(testKit.system());
    this.frames = testKit.createTestProbe();
    this.acks = testKit.createTestProbe();
    this.conn = testKit.spawn(ConnectionActor.create(deps, "c-test", claims, workspace));
    Source<String, Outbound> source = Outbound.source(deps.settings().connection().outboundBuffer(),
        deps.settings().connection().outboundBufferBytes(), deps.metrics());
    Pair<Outbound, SinkQueueWithCancel<String>> slowRun = null;
    if (slow) {
      slowRun = source.toMat(Sink.queue(1), Keep.both()).run(mat);
      this.outbound = slowRun.first();
      this.slowQueue = slowRun.second();
    } else {
      this.outbound = source.to(ActorSink.actorRef(frames.getRef(), CLOSED, t -> CLOSED)).run(mat);
      this.slowQueue = null;
    }
    conn.tell(new ConnectionActor.OutboundReady(outbound));
    conn.tell(new ConnectionActor.StreamStarted(acks.getRef()));
    acks.expectMessage(ConnectionActor.StreamAck.INSTANCE);
  }

  public static SocketHarness open(ActorTestKit testKit, ConnectionActor.Deps deps) {
    return new SocketHarness(testKit, deps, null, null, false);
  }

  public static SocketHarness open(ActorTestKit testKit, ConnectionActor.Deps deps, UserClaims upgradeClaims, String workspace) {
    return new SocketHarness(testKit, deps, upgradeClaims, workspace, false);
  }

  /** A client that reads nothing until {@link #pull} is called. */
  public static SocketHarness slow(ActorTestKit testKit, ConnectionActor.Deps deps, UserClaims upgradeClaims) {
    return new SocketHarness(testKit, deps, upgradeClaims, null, true);
  }

  /** Sends a text frame without waiting for it to be processed. */
  public void sendNoAck(String json) {
    conn.tell(new ConnectionActor.Received(acks.getRef(), new ConnectionActor.Text(json)));
  }

  /** Sends a text frame; returns once the connection has taken it. */
  public void send(String json) {
    sendNoAck(json);
    acks.expectMessage(ConnectionActor.StreamAck.INSTANCE);
  }

  /** Waits for the connection to take a frame sent with {@link #sendNoAck} (the connect frame's is held until connected). */
  public void awaitAck() {
    acks.expectMessage(ConnectionActor.StreamAck.INSTANCE);
  }

  public void sendIncoming(ConnectionActor.Incoming in) {
    conn.tell(new ConnectionActor.Received(acks.getRef(), in));
  }

  /** The next frame of {@code type} (other frames in between are kept in {@link #seen()}). */
  public JsonNode expect(String type) {
    return expect(f -> type.equals(f.path("type").asText()), type, Duration.ofSeconds(5));
  }

  public JsonNode expect(Predicate<JsonNode> p, String what, Duration within) {
    long deadline = System.nanoTime() + within.toNanos();
    while (true) {
      long left = deadline - System.nanoTime();
      if (left <= 0) fail("no " + what + " within " + within + "; saw " + seen);
      JsonNode f = nextFrame(Duration.ofNanos(left));
      if (f == null) fail("socket closed while waiting for " + what + "; saw " + seen);
      if (p.test(f)) return f;
    }
  }

  /** The next frame, or null when the socket closed. */
  public JsonNode nextFrame(Duration within) {
    String text;
    if (slowQueue != null) {
      try {
        Optional<String> o = slowQueue.pull().toCompletableFuture().get(within.toMillis(), TimeUnit.MILLISECONDS);
        text = o.orElse(CLOSED);
      } catch (Exception e) {
        throw new AssertionError("no frame within " + within + "; saw " + seen, e);
      }
    } else {
      text = frames.receiveMessage(within);
    }
    if (CLOSED.equals(text)) {
      conn.tell(ConnectionActor.StreamEnded.INSTANCE);
      return null;
    }
    try {
      JsonNode f = Json.parse(text);
      seen.add(f);
      return f;
    } catch (Exception e) {
      throw new AssertionError("not JSON: " + text, e);
    }
  }

  /** The event frames of a scope seen so far. */
  public List<Long> offsets(String scope) {
    return seen.stream().filter(f -> "event".equals(f.path("type").asText()) && scope.equals(f.path("scope").asText())
        && f.has("offset")).map(f -> f.get("offset").asLong()).toList();
  }

  public List<JsonNode> seen() {
    return seen;
  }

  /** Expects the server to end the connection: a disconnect frame with {@code code}, as the last frame, then the close. */
  public JsonNode expectDisconnect(int code) {
    JsonNode d = expect("disconnect");
    assertEquals(code, d.get("code").asInt(), "disconnect code: " + d);
    assertEquals(null, nextFrame(Duration.ofSeconds(5)), "the disconnect frame must be the last frame");
    return d;
  }

  public void connect(String token) {
    send("{\"type\":\"connect\",\"token\":\"" + token + "\"}");
  }
}
