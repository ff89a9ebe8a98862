package io.scopecast.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.auth.TokenVerifier;
import io.scopecast.actors.auth.UserClaims;
import io.scopecast.app.testing.JarProcess;
import io.scopecast.app.testing.WsClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The packaged jar: starts on its embedded defaults, mints tokens, shuts down cleanly on SIGTERM. */
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
}
