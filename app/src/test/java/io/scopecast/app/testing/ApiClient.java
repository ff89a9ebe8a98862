package io.scopecast.app.testing;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.protocol.Json;
import io.scopecast.actors.testing.TestSettings;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** The server API of one node, with the test API key. */
public final class ApiClient {
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  private final String base;

  public ApiClient(String base) {
    this.base = base;
  }

  public record Answer(int status, JsonNode json, String text) {}

  public String base() {
    return base;
  }

  public URI ws(String query) {
    return URI.create(base.replaceFirst("^http", "ws") + "/ws" + (query.isEmpty() ? "" : "?" + query));
  }

  public Answer api(String method, String path, String body) {
    return call(method, path, body, TestSettings.API_KEY);
  }

  /** The answer; status 0 when the node could not be reached. */
  public Answer call(String method, String path, String body, String key) {
    return send(method, path, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body), key);
  }

  /** The same call with the body sent in chunks (no Content-Length), as a streaming client sends it. */
  public Answer callChunked(String method, String path, String body, String key) {
    byte[] bytes = body.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    return send(method, path, HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(bytes)), key);
  }

  private Answer send(String method, String path, HttpRequest.BodyPublisher body, String key) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path))
        .timeout(Duration.ofSeconds(15))
        .method(method, body);
    if (key != null) b.header("Authorization", "Bearer " + key);
    try {
      HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
      JsonNode json = null;
      try {
        json = Json.parse(r.body());
      } catch (Exception notJson) {
        // left null
      }
      return new Answer(r.statusCode(), json, r.body());
    } catch (IOException e) {
      return new Answer(0, null, e.toString());
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }
}
