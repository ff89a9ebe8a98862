package io.scopecast.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.auth.TokenVerifier;
import io.scopecast.actors.auth.UserClaims;
import io.scopecast.actors.testing.TestSettings;
import io.scopecast.actors.testing.Tokens;
import io.scopecast.app.testing.ApiClient;
import io.scopecast.app.testing.JarProcess;
import io.scopecast.app.testing.ResumingClient;
import io.scopecast.app.testing.WsClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.List;
import java.util.Set;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/**
 * The packaged jar: starts on its embedded defaults, mints tokens, shuts down cleanly on SIGTERM,
 * and a client it evicts resumes from history.
 */
class JarIT {
  private static final Duration START = Duration.ofSeconds(60);

  @Test
  void startsOnItsDefaultsWithAGeneratedSecretAndASampleTokenThatWork() throws Exception {
    try (JarProcess jar = JarProcess.start(Map.of())) {
      jar.awaitOutput("Scopecast listening on 127\\.0\\.0\\.1:" + jar.httpPort, START);
      String token = jar.awaitOutput("sample token [^:]*: (\\S+)", Duration.ofSeconds(1));
      String apiKey = jar.awaitOutput("SCOPECAST_API_KEY=(\\S+)", Duration.ofSeconds(1));

      WsClient client = WsClient.connect(jar.ws(""), token, "\"workspace\":\"1\"");
      HttpResponse<String> r = HttpClient.newHttpClient().send(
          HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + jar.httpPort + "/api/publish"))
              .header("Authorization", "Bearer " + apiKey)
              .POST(HttpRequest.BodyPublishers.ofString("{\"scope\":\"workspace:1\",\"event\":\"hello\",\"payload\":{\"a\":1}}"))
              .build(),
          HttpResponse.BodyHandlers.ofString());
      assertEquals(200, r.statusCode(), r.body());
      JsonNode event = client.expect("event");
      assertEquals("hello", event.get("event").asText());
      assertFalse(jar.output().contains("token=" + token), "the token appears only as the printed sample");

      assertEquals(0, jar.terminate(Duration.ofSeconds(25)), jar.output());
      JsonNode bye = client.expect("disconnect");
      assertEquals(1001, bye.get("code").asInt());
      assertTrue(bye.get("reconnect").asBoolean());
    }
  }

  @Test
  void gentokenPrintsATokenSignedWithTheConfiguredSecret() throws Exception {
    try (JarProcess jar = JarProcess.start(Map.of("SCOPECAST_JWT_SECRET", "it-secret"), "gentoken", "--user", "u1",
        "--workspaces", "42,43")) {
      String token = jar.awaitOutput("(ey\\S+)", START);
      assertEquals(0, jar.process.waitFor());
      UserClaims claims = new TokenVerifier("it-secret", "", Duration.ofSeconds(30)).verifyUser(token);
      assertEquals("u1", claims.user());
      assertEquals(Set.of("42", "43"), claims.workspaces());
    }
  }

  @Test
  void configuredSecretsAreNeverPrinted() {
    try (JarProcess jar = JarProcess.start(Map.of("SCOPECAST_JWT_SECRET", "do-not-print-me", "SCOPECAST_API_KEY", "nor-me"))) {
      jar.awaitOutput("Scopecast listening on", START);
      assertFalse(jar.output().contains("do-not-print-me"));
      assertFalse(jar.output().contains("nor-me"));
      assertFalse(jar.output().contains("sample token"));
      assertEquals(0, jar.terminate(Duration.ofSeconds(25)));
    }
  }

  @Test
  void aClientEvictedForRepliesItDoesNotReadResumesAtOnceAndReplaysWhatItMissedFromHistory() {
    Map<String, String> env = Map.of("SCOPECAST_JWT_SECRET", TestSettings.SECRET, "SCOPECAST_API_KEY", TestSettings.API_KEY,
        // a small send buffer, and a history that holds far more than the socket buffers do
        "JAVA_TOOL_OPTIONS", "-Dscopecast.connection.outbound-buffer=64 -Dscopecast.history.size=4000");
    try (JarProcess jar = JarProcess.start(env)) {
      jar.awaitOutput("Scopecast listening on", START);
      ApiClient api = new ApiClient("http://127.0.0.1:" + jar.httpPort);
      String scope = "workspace:evicted";
      ResumingClient client = new ResumingClient(Tokens.user("eve", "evicted"), "\"workspace\":\"evicted\"").connect(api.ws(""));
      client.socket().stopReading();
      String body = "{\"scope\":\"" + scope + "\",\"event\":\"bulk\",\"payload\":\"" + "x".repeat(8 * 1024) + "\"}";
      long last = 0;
      // events fill the socket buffers and then wait in history; the pongs the client does not read
      // pile up beyond the send buffer's bound, and the client is evicted (4008)
      long start = System.nanoTime();
      for (int i = 0; evictions(api) == 0; i++) {
        assertTrue(i < 3000, "the client that reads nothing was never evicted");
        last = api.api("POST", "/api/publish", body).json().get("offset").asLong();
        client.socket().send("{\"type\":\"ping\",\"id\":" + i + "}");
        LockSupport.parkNanos(start + (i + 1) * 7_000_000L - System.nanoTime()); // ~140 frames/s: under the flood limit
      }
      client.socket().resumeReading(); // it reads what reached it, then the socket ends
      client.socket().awaitClose(Duration.ofSeconds(30));
      long reached = client.position(scope).offset();
      assertTrue(reached < last, "the eviction cost the client events (" + reached + " of " + last + ")");

      client.connect(api.ws("")); // at once, with resume
      long published = last;
      client.awaitOffset(scope, () -> published, Duration.ofSeconds(60));
      assertEquals(List.of(), client.violations(), "every event once, in order");
      assertEquals(0, client.notRecovered() + client.resyncs(), "history held what it missed: " + client.notable());
      assertEquals(published, client.position(scope).offset());
      assertEquals(0, jar.terminate(Duration.ofSeconds(25)), jar.output());
    }
  }

  private static long evictions(ApiClient api) {
    return api.api("GET", "/health/realtime", null).json().get("metrics").get("slow_consumer_evictions").asLong();
  }
}
