package io.scopecast.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.connection.CloseCode;
import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.protocol.Json;
import io.scopecast.actors.protocol.RawJson;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.protocol.ScopeNames;
import io.scopecast.actors.protocol.ServerFrames;
import io.scopecast.actors.scope.ScopeEntity;
import io.scopecast.actors.settings.ScopecastSettings;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.Supplier;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.http.javadsl.model.HttpEntity;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpMethods;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;
import org.apache.pekko.stream.Materializer;

/**
 * The server API for backends (§10), under {@code /api}, authenticated with the API key. Every
 * bad input is a 400 with {@code {"error":{"code","message"}}}; a scope that does not answer within
 * {@code scopecast.api.timeout} is a 503 {@code unavailable} with a retry hint, never a false 200.
 */
public final class ApiRoutes extends AllDirectives {
  private static final long BODY_READ_TIMEOUT_MS = 10_000;

  private final ScopecastSettings settings;
  private final Function<String, EntityRef<ScopeEntity.Command>> scopes;
  private final Materializer materializer;
  private final byte[] apiKey;
  private final Duration timeout;
  private final PublishAnswers publishing;
  /** Each instance's reply actor needs a name of its own (tests start several nodes in one JVM). */
  private static final AtomicInteger INSTANCES = new AtomicInteger();

  public ApiRoutes(ActorSystem<?> system, ScopecastSettings settings,
      Function<String, EntityRef<ScopeEntity.Command>> scopes) {
    this.settings = settings;
    this.scopes = scopes;
    this.materializer = Materializer.matFromSystem(system);
    this.apiKey = settings.auth().apiKey().getBytes(StandardCharsets.UTF_8);
    this.timeout = settings.api().timeout();
    this.publishing = new PublishAnswers(settings, scopes,
        new PublishReplies(system, "publish-replies-" + INSTANCES.incrementAndGet()));
  }

  public Route route() {
    return pathPrefix("api", () -> authenticated(() -> concat(
        path("publish", () -> post(() -> jsonBody(p -> completeWithFuture(publishing.publish(p))))),
        path("broadcast", () -> post(() -> jsonBody(p -> completeWithFuture(publishing.broadcast(p))))),
        path("batch", () -> post(() -> jsonBody(p -> completeWithFuture(publishing.batch(p))))),
        path("disconnect", () -> post(() -> jsonBody(this::disconnect))),
        path(PathMatchers.segment("history").slash(PathMatchers.segment()), scope -> get(() -> history(scope))),
        path(PathMatchers.segment("scopes").slash(PathMatchers.segment()), scope -> get(() -> scopeInfo(scope))),
        path(PathMatchers.segment("presence").slash(PathMatchers.segment()), scope -> get(() -> presence(scope))))));
  }

  // ---- authentication and bodies -------------------------------------------------------------

  private Route authenticated(Supplier<Route> inner) {
    return optionalHeaderValueByName("Authorization", header -> authorized(header) ? inner.get() : complete(unauthorized()));
  }

  /** The {@code Authorization} header holds the API key (compared in constant time). */
  private boolean authorized(Optional<String> header) {
    return header
        .filter(v -> v.regionMatches(true, 0, "Bearer ", 0, 7))
        .map(v -> MessageDigest.isEqual(v.substring(7).trim().getBytes(StandardCharsets.UTF_8), apiKey))
        .orElse(false);
  }

  private static HttpResponse unauthorized() {
    return JsonResponses.error(StatusCodes.UNAUTHORIZED, "unauthorized", "missing or wrong API key");
  }

  /**
   * {@code POST /api/publish} without the routing DSL, for a body that arrived whole (the usual
   * case): the same checks and answers as the route, at a fraction of its cost per request. Null
   * for any other request, which the routes answer.
   */
  public CompletionStage<HttpResponse> publishFast(HttpRequest request) {
    if (request.method() != HttpMethods.POST || !(request.entity() instanceof HttpEntity.Strict body)) return null;
    String path = request.getUri().path();
    boolean single = path.equals("/api/publish");
    if (!single && !path.equals("/api/batch")) return null;
    if (!authorized(request.getHeader("Authorization").map(HttpHeader::value))) {
      return CompletableFuture.completedFuture(unauthorized());
    }
    long max = settings.http().maxBodyBytes();
    if (body.getData().length() > max) return CompletableFuture.completedFuture(tooLarge(max));
    RawJson.Parsed parsed;
    try {
      parsed = RawJson.object(body.getData().toArrayUnsafe());
    } catch (JsonProcessingException e) {
      return CompletableFuture.completedFuture(badBody(e));
    }
    return single ? publishing.publish(parsed) : publishing.batch(parsed);
  }

  /**
   * Reads the body (at most {@code max-body-bytes}, else 413) as one JSON object, straight from its
   * bytes; its {@code payload} is kept as its own text (§13.23).
   */
  private Route jsonBody(Function<RawJson.Parsed, Route> handler) {
    long max = settings.http().maxBodyBytes();
    return extractRequestEntity(entity -> {
      if (entity.getContentLengthOption().isPresent() && entity.getContentLengthOption().getAsLong() > max) {
        return complete(tooLarge(max));
      }
      return onComplete(entity.withSizeLimit(max).toStrict(BODY_READ_TIMEOUT_MS, max, materializer), result -> {
        if (result.isFailure()) {
          Throwable e = PublishAnswers.unwrap(result.failed().get());
          return complete(e instanceof EntityStreamSizeException ? tooLarge(max)
              : JsonResponses.badRequest("could not read the request body"));
        }
        RawJson.Parsed body;
        try {
          body = RawJson.object(result.get().getData().toArrayUnsafe());
        } catch (JsonProcessingException e) {
          return complete(badBody(e));
        }
        return handler.apply(body);
      });
    });
  }

  /** 400 for a body that is not one JSON object, or whose payload cannot travel verbatim (the message says why). */
  private static HttpResponse badBody(JsonProcessingException e) {
    if (e instanceof RawJson.PayloadRefused refused) return JsonResponses.badRequest(refused.getOriginalMessage());
    if (e instanceof RawJson.NotAnObject) return JsonResponses.badRequest("the body must be a JSON object");
    return JsonResponses.badRequest("the body is not valid JSON");
  }

  private static HttpResponse tooLarge(long max) {
    return JsonResponses.error(StatusCodes.PAYLOAD_TOO_LARGE, "too_large", "request bodies are limited to " + max + " bytes");
  }

  // ---- history / scopes / presence -----------------------------------------------------------

  private Route history(String scopeText) {
    ScopeNames.Checked scope = ScopeNames.check(scopeText, settings::knowsType);
    if (!scope.ok()) return complete(JsonResponses.error(StatusCodes.BAD_REQUEST, scope.error()));
    return parameterOptional("since", since -> parameterOptional("limit", limitText -> {
      long after;
      int limit;
      try {
        after = since.map(Long::parseLong).orElse(0L);
        limit = limitText.map(Integer::parseInt).orElse(settings.api().historyDefaultLimit());
      } catch (NumberFormatException e) {
        return complete(JsonResponses.badRequest("since and limit must be integers"));
      }
      if (after < 0) return complete(JsonResponses.badRequest("since must be >= 0"));
      if (limit < 1 || limit > settings.api().historyMaxLimit()) {
        return complete(JsonResponses.badRequest("limit must be 1.." + settings.api().historyMaxLimit()));
      }
      CompletionStage<ScopeEntity.HistoryPage> page = scopes.apply(scope.scope().toString())
          .ask(replyTo -> new ScopeEntity.ReadHistory(after, limit, replyTo), timeout);
      return onComplete(page, r -> r.isFailure() ? complete(publishing.unavailable(scope.scope(), null))
          : complete(JsonResponses.ok(historyJson(r.get()))));
    }));
  }

  /** {@code {epoch, offset, events:[{offset, event, payload, ts}]}} from the stored event frames. */
  static String historyJson(ScopeEntity.HistoryPage page) {
    return Json.object(g -> {
      g.writeStringField("epoch", page.epoch());
      g.writeNumberField("offset", page.offset());
      g.writeArrayFieldStart("events");
      for (HistoryEntry e : page.events()) {
        RawJson.Parsed frame = RawJson.object(e.frame()); // the stored frame's payload, as published
        g.writeStartObject();
        g.writeNumberField("offset", e.offset());
        g.writeFieldName("event");
        g.writeTree(frame.fields().get("event"));
        g.writeFieldName("payload");
        g.writeRawValue(frame.payloadOrNull());
        g.writeNumberField("ts", e.ts());
        g.writeEndObject();
      }
      g.writeEndArray();
    });
  }

  private Route scopeInfo(String scopeText) {
    ScopeNames.Checked scope = ScopeNames.check(scopeText, settings::knowsType);
    if (!scope.ok()) return complete(JsonResponses.error(StatusCodes.BAD_REQUEST, scope.error()));
    CompletionStage<ScopeEntity.Info> info = scopes.apply(scope.scope().toString()).ask(ScopeEntity.GetInfo::new, timeout);
    return onComplete(info, r -> {
      if (r.isFailure()) return complete(publishing.unavailable(scope.scope(), null));
      ScopeEntity.Info i = r.get();
      return complete(JsonResponses.ok(Json.object(g -> {
        g.writeStringField("scope", i.scope());
        g.writeStringField("epoch", i.epoch());
        g.writeNumberField("offset", i.offset());
        g.writeStringField("node", i.node());
        g.writeNumberField("subscribers", i.subscribers());
      })));
    });
  }

  private Route presence(String scopeText) {
    ScopeNames.Checked scope = ScopeNames.check(scopeText, settings::knowsType);
    if (!scope.ok()) return complete(JsonResponses.error(StatusCodes.BAD_REQUEST, scope.error()));
    if (!settings.type(scope.scope().type()).presence()) {
      return complete(JsonResponses.badRequest("scope type " + scope.scope().type() + " has no presence"));
    }
    CompletionStage<ScopeEntity.PresenceMembers> members = scopes.apply(scope.scope().toString())
        .ask(ScopeEntity.GetPresence::new, timeout);
    return onComplete(members, r -> r.isFailure() ? complete(publishing.unavailable(scope.scope(), null))
        : complete(JsonResponses.ok(Json.object(g -> {
          g.writeArrayFieldStart("members");
          for (ServerFrames.Member m : r.get().members()) ServerFrames.writeMember(g, m);
          g.writeEndArray();
        }))));
  }

  // ---- disconnect ----------------------------------------------------------------------------

  private Route disconnect(RawJson.Parsed parsed) {
    JsonNode body = parsed.fields();
    JsonNode user = body.get("user");
    if (user == null || !user.isTextual() || !ScopeId.isValidId(user.asText())) {
      return complete(JsonResponses.badRequest("user must be a user id"));
    }
    JsonNode codeField = body.get("code");
    int code = CloseCode.BACKEND_DEFAULT;
    if (codeField != null && !codeField.isNull()) {
      if (!codeField.isIntegralNumber() || !codeField.canConvertToInt()) return complete(JsonResponses.badRequest("code must be an integer"));
      code = codeField.asInt();
      if (!CloseCode.allowedForBackends(code)) {
        return complete(JsonResponses.badRequest("code must be 1000 or 3000..4999"));
      }
    }
    JsonNode reasonField = body.get("reason");
    if (reasonField != null && !reasonField.isNull() && (!reasonField.isTextual() || reasonField.asText().length() > 256)) {
      return complete(JsonResponses.badRequest("reason must be a string of at most 256 characters"));
    }
    JsonNode reconnectField = body.get("reconnect");
    if (reconnectField != null && !reconnectField.isNull() && !reconnectField.isBoolean()) {
      return complete(JsonResponses.badRequest("reconnect must be a boolean"));
    }
    String reason = reasonField == null || reasonField.isNull() ? "disconnected by the server" : reasonField.asText();
    boolean reconnect = reconnectField != null && reconnectField.asBoolean();
    CloseCode close = CloseCode.byBackend(code, reason, reconnect);
    ScopeId scope = ScopeId.user(user.asText());
    CompletionStage<ScopeEntity.Kicked> kicked = scopes.apply(scope.toString())
        .ask(replyTo -> new ScopeEntity.Kick(close, replyTo), timeout);
    return onComplete(kicked, r -> r.isFailure() ? complete(publishing.unavailable(scope, null))
        : complete(JsonResponses.ok(Json.object(g -> g.writeNumberField("connections", r.get().connections())))));
  }

}
