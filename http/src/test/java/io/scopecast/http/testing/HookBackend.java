package io.scopecast.http.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.scopecast.actors.protocol.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A small app backend answering Scopecast's authorization hook with the rules real apps use:
 * a {@code chat:} scope only for the chat's creator; a {@code task:} scope for members of the
 * task's workspace, but a task that belongs to a chat only for that chat's creator; users without
 * a session, empty users and everything else are denied.
 */
public final class HookBackend implements AutoCloseable {

  /** How the backend misbehaves, for failure-mode tests. */
  public enum Mode { NORMAL, FAIL_500, MALFORMED, HANG }

  private static final Map<String, String> CHAT_CREATOR = Map.of("c1", "alice", "c2", "carol");
  private static final Map<String, String> TASK_WORKSPACE = Map.of("t1", "w1", "t2", "w1", "t3", "w2");
  private static final Map<String, String> TASK_CHAT = Map.of("t2", "c1");
  private static final Map<String, Set<String>> WORKSPACE_MEMBERS = Map.of("w1", Set.of("alice", "bob"), "w2", Set.of("carol"));
  private static final Set<String> SESSIONS = Set.of("alice", "bob", "carol");

  private final HttpServer server;
  private final AtomicInteger calls = new AtomicInteger();
  private final CountDownLatch release = new CountDownLatch(1);
  private volatile Mode mode = Mode.NORMAL;

  public HookBackend() {
    try {
      server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    server.createContext("/authorize", this::handle);
    server.setExecutor(Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "hook-backend");
      t.setDaemon(true);
      return t;
    }));
    server.start();
  }

  public String url() {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/authorize";
  }

  public int calls() {
    return calls.get();
  }

  public void mode(Mode m) {
    mode = m;
  }

  /** The app's rule: may {@code user} (in {@code workspace}) read {@code scope}? */
  public static boolean allows(String user, String scope) {
    if (user == null || user.isEmpty() || !SESSIONS.contains(user)) return false;
    int colon = scope.indexOf(':');
    String type = scope.substring(0, colon);
    String id = scope.substring(colon + 1);
    if (type.equals("chat")) return user.equals(CHAT_CREATOR.get(id));
    if (type.equals("task")) {
      String chat = TASK_CHAT.get(id);
      if (chat != null) return user.equals(CHAT_CREATOR.get(chat));
      String ws = TASK_WORKSPACE.get(id);
      return ws != null && WORKSPACE_MEMBERS.getOrDefault(ws, Set.of()).contains(user);
    }
    return false;
  }

  private void handle(HttpExchange ex) throws IOException {
    calls.incrementAndGet();
    try (ex) {
      JsonNode q = Json.parse(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
      switch (mode) {
        case FAIL_500 -> reply(ex, 500, "{\"error\":\"boom\"}");
        case MALFORMED -> reply(ex, 200, "{\"allow\":\"yes\"}");
        case HANG -> {
          release.await(30, TimeUnit.SECONDS);
          reply(ex, 200, "{\"allow\":true}");
        }
        case NORMAL -> reply(ex, 200, "{\"allow\":" + allows(q.path("user").asText(), q.path("scope").asText()) + "}");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void reply(HttpExchange ex, int status, String body) throws IOException {
    byte[] b = body.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().add("Content-Type", "application/json");
    ex.sendResponseHeaders(status, b.length);
    ex.getResponseBody().write(b);
  }

  @Override
  public void close() {
    release.countDown();
    server.stop(0);
  }
}
