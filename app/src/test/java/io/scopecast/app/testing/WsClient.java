package io.scopecast.app.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.scopecast.actors.protocol.Json;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A real WebSocket client (the JDK's) for integration tests: a log of the JSON frames received, waits
 * with timeouts, and a slow mode that stops reading from the socket.
 */
public final class WsClient implements WebSocket.Listener {
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  /** Reads what any JSON client reads: a payload's numbers may be of any length (§13.23). */
  private static final ObjectMapper READER = JsonMapper.builder(JsonFactory.builder()
      .streamReadConstraints(StreamReadConstraints.builder().maxNumberLength(Integer.MAX_VALUE).build()).build()).build();
  private static final JsonNode CLOSED = Json.MAPPER.createObjectNode().put("type", "<closed>");

  private final LinkedBlockingQueue<JsonNode> inbox = new LinkedBlockingQueue<>();
  private final List<JsonNode> seen = Collections.synchronizedList(new ArrayList<>());
  /** Every text frame as it came over the wire, to check what parsing would hide (a payload's form). */
  private final List<String> raw = Collections.synchronizedList(new ArrayList<>());
  private final StringBuilder partial = new StringBuilder();
  private final CompletableFuture<Integer> closed = new CompletableFuture<>();
  private final boolean answerPings;
  private volatile boolean reading = true;
  private WebSocket ws;

  private WsClient(boolean answerPings) {
    this.answerPings = answerPings;
  }

  /** Result of an upgrade: a client, or the HTTP status the server refused it with. */
  public record Upgrade(WsClient client, int status) {}

  public static Upgrade open(URI uri, Map<String, String> headers) {
    WsClient c = new WsClient(true);
    WebSocket.Builder b = HTTP.newWebSocketBuilder().connectTimeout(Duration.ofSeconds(5));
    headers.forEach(b::header);
    try {
      c.ws = b.buildAsync(uri, c).join();
      return new Upgrade(c, 101);
    } catch (CompletionException e) {
      if (e.getCause() instanceof WebSocketHandshakeException h) return new Upgrade(null, h.getResponse().statusCode());
      throw e;
    }
  }

  /** Opens and completes the handshake with a token in the connect frame. */
  public static WsClient connect(URI uri, String token, String extraConnectFields) {
    WsClient c = open(uri, Map.of()).client();
    c.send("{\"type\":\"connect\",\"token\":\"" + token + "\"" + (extraConnectFields.isEmpty() ? "" : "," + extraConnectFields) + "}");
    c.expect("connected");
    return c;
  }

  public WsClient send(String text) {
    ws.sendText(text, true).join();
    return this;
  }

  /** Stops reading: the server's frames pile up in the socket buffers. */
  public void stopReading() {
    reading = false;
  }

  public void resumeReading() {
    reading = true;
    ws.request(1);
  }

  public void abort() {
    ws.abort();
  }

  public void close() {
    if (!ws.isOutputClosed()) ws.sendClose(WebSocket.NORMAL_CLOSURE, "bye");
  }

  @Override
  public void onOpen(WebSocket webSocket) {
    webSocket.request(1);
  }

  @Override
  public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
    partial.append(data);
    if (last) {
      raw.add(partial.toString());
      try {
        JsonNode f = READER.readTree(partial.toString());
        seen.add(f);
        inbox.add(f);
        if (answerPings && "ping".equals(f.path("type").asText())) webSocket.sendText("{\"type\":\"pong\"}", true);
      } catch (Exception e) {
        inbox.add(Json.MAPPER.createObjectNode().put("type", "<not json>").put("raw", partial.toString()));
      }
      partial.setLength(0);
    }
    if (reading) webSocket.request(1);
    return null;
  }

  @Override
  public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
    closed.complete(statusCode);
    inbox.add(CLOSED);
    return null;
  }

  @Override
  public void onError(WebSocket webSocket, Throwable error) {
    closed.complete(1006);
    inbox.add(CLOSED);
  }

  public JsonNode expect(String type) {
    return expect(f -> type.equals(f.path("type").asText()), type, Duration.ofSeconds(10));
  }

  /** The next frame matching {@code p}; frames in between stay in {@link #seen()}. */
  public JsonNode expect(Predicate<JsonNode> p, String what, Duration within) {
    long deadline = System.nanoTime() + within.toNanos();
    try {
      while (true) {
        JsonNode f = inbox.poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        if (f == null) fail("no " + what + " within " + within + "; last frames " + last(5));
        if (f == CLOSED) fail("closed while waiting for " + what + "; last frames " + last(5));
        if (p.test(f)) return f;
      }
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }

  /** Sends a frame with an id and returns the reply carrying it. */
  public JsonNode request(String frameWithId, String id) {
    send(frameWithId);
    return expect(f -> f.has("id") && f.get("id").asText().equals(id), "reply " + id, Duration.ofSeconds(10));
  }

  /** The server ends the connection: a disconnect frame with {@code code} as the last frame, then the close. */
  public JsonNode expectDisconnect(int code, Duration within) {
    JsonNode d = expect(f -> "disconnect".equals(f.path("type").asText()), "disconnect " + code, within);
    assertEquals(code, d.get("code").asInt(), "disconnect code");
    closed.orTimeout(10, TimeUnit.SECONDS).join();
    int at = seen.indexOf(d);
    assertEquals(seen.size() - 1, at, "the disconnect frame must be the last frame: " + last(3));
    return d;
  }

  public int awaitClose(Duration within) {
    return closed.orTimeout(within.toMillis(), TimeUnit.MILLISECONDS).join();
  }

  public boolean isClosed() {
    return closed.isDone();
  }

  /** Durable event offsets received for a scope, in arrival order. */
  public List<Long> offsets(String scope) {
    synchronized (seen) {
      return seen.stream().filter(f -> "event".equals(f.path("type").asText()) && scope.equals(f.path("scope").asText())
          && f.has("offset")).map(f -> f.get("offset").asLong()).toList();
    }
  }

  public void awaitOffsets(String scope, int count, Duration within) {
    long deadline = System.nanoTime() + within.toNanos();
    while (offsets(scope).size() < count) {
      if (System.nanoTime() > deadline) fail(count + " events on " + scope + " expected, got " + offsets(scope));
      expect(f -> "event".equals(f.path("type").asText()) && scope.equals(f.path("scope").asText()),
          "event on " + scope, Duration.ofNanos(Math.max(1, deadline - System.nanoTime())));
    }
    assertTrue(offsets(scope).size() >= count);
  }

  /** The text frames received so far, as sent. */
  public List<String> rawFrames() {
    synchronized (raw) {
      return List.copyOf(raw);
    }
  }

  public List<JsonNode> seen() {
    synchronized (seen) {
      return List.copyOf(seen);
    }
  }

  private String last(int n) {
    List<JsonNode> s = seen();
    return s.subList(Math.max(0, s.size() - n), s.size()).toString();
  }
}
