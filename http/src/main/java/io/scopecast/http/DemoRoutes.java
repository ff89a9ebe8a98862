package io.scopecast.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.auth.InvalidTokenException;
import io.scopecast.actors.auth.TokenMinter;
import io.scopecast.actors.auth.TokenVerifier;
import io.scopecast.actors.auth.UserClaims;
import io.scopecast.actors.protocol.Json;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.scope.ScopeEntity;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * The demo (only with {@code scopecast.demo.enabled}): a page at {@code /demo} where people chat in
 * {@code workspace:demo} with presence and typing, built on clients/js. Its two endpoints stand in
 * for an app's backend: {@code /demo/api/login} mints a token for a name, and
 * {@code /demo/api/messages} publishes a message on behalf of the user whose token it is given.
 * The API key never reaches the browser.
 */
public final class DemoRoutes extends AllDirectives {
  public static final String WORKSPACE = "demo";
  private static final int MAX_TEXT = 2000;

  private final TokenMinter minter;
  private final TokenVerifier tokens;
  private final Function<String, EntityRef<ScopeEntity.Command>> scopes;
  private final Duration timeout;

  public DemoRoutes(TokenMinter minter, TokenVerifier tokens, Function<String, EntityRef<ScopeEntity.Command>> scopes,
      Duration timeout) {
    this.minter = minter;
    this.tokens = tokens;
    this.scopes = scopes;
    this.timeout = timeout;
  }

  public Route route() {
    return pathPrefix("demo", () -> concat(
        pathEndOrSingleSlash(() -> get(() -> getFromResource("demo/index.html", ContentTypes.TEXT_HTML_UTF8))),
        path("scopecast.js", () -> get(() -> getFromResource("demo/scopecast.js",
            org.apache.pekko.http.javadsl.model.ContentTypes.create(org.apache.pekko.http.javadsl.model.MediaTypes.APPLICATION_JAVASCRIPT,
                org.apache.pekko.http.javadsl.model.HttpCharsets.UTF_8)))),
        path(segment("api").slash("login"), () -> post(() -> entity(org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller.entityToString(), this::login))),
        path(segment("api").slash("messages"), () -> post(() -> optionalHeaderValueByName("Authorization",
            auth -> entity(org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller.entityToString(), body -> message(auth, body)))))));
  }

  private static org.apache.pekko.http.javadsl.server.PathMatcher0 segment(String s) {
    return org.apache.pekko.http.javadsl.server.PathMatchers.segment(s);
  }

  private Route login(String body) {
    JsonNode user = parse(body).map(b -> b.get("user")).orElse(null);
    if (user == null || !user.isTextual() || !ScopeId.isValidId(user.asText()) || user.asText().length() > 32) {
      return complete(JsonResponses.badRequest("user must be 1..32 characters of [A-Za-z0-9_.-]"));
    }
    String token = minter.userToken(user.asText(), List.of(WORKSPACE), Duration.ofHours(12));
    return complete(JsonResponses.ok(Json.object(g -> {
      g.writeStringField("user", user.asText());
      g.writeStringField("workspace", WORKSPACE);
      g.writeStringField("token", token);
    })));
  }

  private Route message(Optional<String> auth, String body) {
    UserClaims claims;
    try {
      claims = tokens.verifyUser(auth.filter(a -> a.startsWith("Bearer ")).map(a -> a.substring(7).trim()).orElse(null));
    } catch (InvalidTokenException e) {
      return complete(JsonResponses.error(StatusCodes.UNAUTHORIZED, "unauthorized", "invalid or expired token"));
    }
    if (!claims.grantsWorkspace(WORKSPACE)) return complete(JsonResponses.error(StatusCodes.FORBIDDEN, "forbidden", "not a demo user"));
    JsonNode text = parse(body).map(b -> b.get("text")).orElse(null);
    if (text == null || !text.isTextual() || text.asText().isBlank() || text.asText().length() > MAX_TEXT) {
      return complete(JsonResponses.badRequest("text must be 1.." + MAX_TEXT + " characters"));
    }
    String payload = Json.object(g -> {
      g.writeStringField("user", claims.user());
      g.writeStringField("text", text.asText());
    });
    CompletionStage<ScopeEntity.PublishResult> p = scopes.apply("workspace:" + WORKSPACE)
        .ask(replyTo -> new ScopeEntity.Publish("message", payload, null, replyTo), timeout);
    return onComplete(p, r -> r.isFailure() || !(r.get() instanceof ScopeEntity.Published published)
        ? complete(JsonResponses.unavailable("the demo workspace did not answer, try again"))
        : complete(JsonResponses.ok(Json.object(g -> {
          g.writeStringField("epoch", published.epoch());
          g.writeNumberField("offset", published.offset());
        }))));
  }

  private static Optional<JsonNode> parse(String body) {
    try {
      JsonNode n = Json.parse(body);
      return n.isObject() ? Optional.of(n) : Optional.empty();
    } catch (JsonProcessingException e) {
      return Optional.empty();
    }
  }
}
