package io.scopecast.http;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.connection.CloseCode;
import io.scopecast.actors.history.HistoryEntry;
import io.scopecast.actors.protocol.EventNames;
import io.scopecast.actors.protocol.Json;
import io.scopecast.actors.protocol.ProtocolError;
import io.scopecast.actors.protocol.RawJson;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.protocol.ScopeNames;
import io.scopecast.actors.protocol.ServerFrames;
import io.scopecast.actors.scope.ScopeEntity;
import io.scopecast.actors.settings.ScopecastSettings;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
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
  private static final int MAX_BROADCAST_SCOPES = 1000;
  static final int MAX_BATCH_ITEMS = 1000;
  static final int MAX_BATCH_PUBLISHES = 10_000;
  private static final int MAX_IDEMPOTENCY_KEY = 256;

  private final ScopecastSettings settings;
  private final Function<String, EntityRef<ScopeEntity.Command>> scopes;
  private final Materializer materializer;
  private final byte[] apiKey;
  private final Duration timeout;
  private final PublishReplies replies;
  /** Each instance's reply actor needs a name of its own (tests start several nodes in one JVM). */
  private static final AtomicInteger INSTANCES = new AtomicInteger();

  public ApiRoutes(ActorSystem<?> system, ScopecastSettings settings,
      Function<String, EntityRef<ScopeEntity.Command>> scopes) {
    this.settings = settings;
    this.scopes = scopes;
    this.materializer = Materializer.matFromSystem(system);
    this.apiKey = settings.auth().apiKey().getBytes(StandardCharsets.UTF_8);
    this.timeout = settings.api().timeout();
    this.replies = new PublishReplies(system, "publish-replies-" + INSTANCES.incrementAndGet());
  }

  public Route route() {
    return pathPrefix("api", () -> authenticated(() -> concat(
        path("publish", () -> post(() -> jsonBody(this::publish))),
        path("broadcast", () -> post(() -> jsonBody(this::broadcast))),
        path("batch", () -> post(() -> jsonBody(p -> completeWithFuture(batchAnswer(p))))),
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
      parsed = RawJson.object(body.getData().toArray());
    } catch (JsonProcessingException e) {
      return CompletableFuture.completedFuture(badBody(e));
    }
    return single ? publishAnswer(parsed) : batchAnswer(parsed);
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
          Throwable e = unwrap(result.failed().get());
          return complete(e instanceof EntityStreamSizeException ? tooLarge(max)
              : JsonResponses.badRequest("could not read the request body"));
        }
        RawJson.Parsed body;
        try {
          body = RawJson.object(result.get().getData().toArray());
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

  // ---- publish / broadcast -------------------------------------------------------------------

  private Route publish(RawJson.Parsed parsed) {
    return completeWithFuture(publishAnswer(parsed));
  }

  /** The answer to a publish: 400 for bad fields, else {@code {epoch, offset}} once the scope has it, or 503. */
  private CompletionStage<HttpResponse> publishAnswer(RawJson.Parsed parsed) {
    JsonNode body = parsed.fields();
    JsonNode scopeField = body.get("scope");
    if (scopeField == null || !scopeField.isTextual()) {
      return CompletableFuture.completedFuture(JsonResponses.badRequest("scope must be a string"));
    }
    Optional<String> problem = eventProblem(body);
    if (problem.isPresent()) return CompletableFuture.completedFuture(JsonResponses.badRequest(problem.get()));
    ScopeNames.Checked scope = ScopeNames.check(scopeField, settings::knowsType);
    if (!scope.ok()) return CompletableFuture.completedFuture(JsonResponses.error(StatusCodes.BAD_REQUEST, scope.error()));
    String key = body.hasNonNull("idempotency_key") ? body.get("idempotency_key").asText() : null;
    return publishTo(scope.scope(), body, parsed.payloadOrNull(), key).handle((p, e) -> e != null
        ? unavailable(scope.scope(), e)
        : JsonResponses.ok("{\"epoch\":\"" + p.epoch() + "\",\"offset\":" + p.offset() + "}")); // an epoch is base-62
  }

  private Route broadcast(RawJson.Parsed parsed) {
    JsonNode body = parsed.fields();
    JsonNode list = body.get("scopes");
    if (list == null || !list.isArray() || list.isEmpty() || list.size() > MAX_BROADCAST_SCOPES) {
      return complete(JsonResponses.badRequest("scopes must be an array of 1.." + MAX_BROADCAST_SCOPES + " scopes"));
    }
    Optional<String> problem = eventProblem(body);
    if (problem.isPresent()) return complete(JsonResponses.badRequest(problem.get()));
    List<JsonNode> names = new ArrayList<>();
    List<CompletableFuture<Object>> results = new ArrayList<>();
    Outgoing out = new Outgoing();
    for (JsonNode name : list) {
      names.add(name);
      results.add(outcome(name, parsed, out));
    }
    out.send();
    CompletableFuture<Void> all = CompletableFuture.allOf(results.toArray(CompletableFuture[]::new));
    return onComplete(all, done -> complete(JsonResponses.ok(Json.object(g -> {
      g.writeArrayFieldStart("results");
      for (int i = 0; i < names.size(); i++) writeOutcome(g, names.get(i), results.get(i).join());
      g.writeEndArray();
    }))));
  }

  // ---- batch -------------------------------------------------------------------------------

  /**
   * {@code POST /api/batch {items:[…]}}: publishes ({@code scope}) and broadcasts ({@code scopes})
   * run in item order, so a scope gets its items' events in that order; answered item by item.
   */
  private CompletionStage<HttpResponse> batchAnswer(RawJson.Parsed parsed) {
    List<RawJson.Parsed> items = parsed.items();
    if (items == null || items.isEmpty() || items.size() > MAX_BATCH_ITEMS) {
      return CompletableFuture.completedFuture(JsonResponses.badRequest("items must be an array of 1.." + MAX_BATCH_ITEMS + " objects"));
    }
    long publishes = items.stream().mapToLong(i -> i == null ? 0 : i.fields().path("scopes").isArray() ? i.fields().get("scopes").size() : 1).sum();
    if (publishes > MAX_BATCH_PUBLISHES) {
      return CompletableFuture.completedFuture(JsonResponses.badRequest(
          "a batch may publish at most " + MAX_BATCH_PUBLISHES + " events (its items' scopes together)"));
    }
    List<List<CompletableFuture<Object>>> results = new ArrayList<>(items.size());
    List<List<JsonNode>> names = new ArrayList<>(items.size());
    Outgoing out = new Outgoing();
    for (RawJson.Parsed item : items) {
      List<JsonNode> scopesOfItem = new ArrayList<>(1);
      List<CompletableFuture<Object>> outcomes = new ArrayList<>(1);
      names.add(scopesOfItem);
      results.add(outcomes);
      ProtocolError invalid = itemProblem(item);
      if (invalid != null) {
        outcomes.add(CompletableFuture.completedFuture(invalid));
        continue;
      }
      JsonNode many = item.fields().get("scopes");
      for (JsonNode name : many != null ? many : List.of(item.fields().get("scope"))) {
        scopesOfItem.add(name);
        outcomes.add(outcome(name, item, out));
      }
    }
    out.send(); // a scope's publishes in one message, in item order
    CompletableFuture<?>[] all = results.stream().flatMap(List::stream).toArray(CompletableFuture[]::new);
    return CompletableFuture.allOf(all).thenApply(done -> JsonResponses.ok(Json.object(g -> {
      g.writeArrayFieldStart("results");
      for (int i = 0; i < items.size(); i++) {
        List<CompletableFuture<Object>> outcomes = results.get(i);
        boolean broadcast = items.get(i) != null && items.get(i).fields().has("scopes") && !names.get(i).isEmpty();
        if (!broadcast) {
          writeOutcome(g, null, outcomes.get(0).join());
          continue;
        }
        g.writeStartObject();
        g.writeArrayFieldStart("results");
        for (int k = 0; k < outcomes.size(); k++) writeOutcome(g, names.get(i).get(k), outcomes.get(k).join());
        g.writeEndArray();
        g.writeEndObject();
      }
      g.writeEndArray();
    })));
  }

  /** Why a batch item cannot run (null: it can): a publish names one {@code scope}, a broadcast 1..1000 {@code scopes}. */
  private static ProtocolError itemProblem(RawJson.Parsed item) {
    if (item == null) return ProtocolError.badRequest("an item must be an object");
    JsonNode one = item.fields().get("scope");
    JsonNode many = item.fields().get("scopes");
    if ((one == null) == (many == null)) return ProtocolError.badRequest("an item has either scope or scopes");
    if (one != null && !one.isTextual()) return ProtocolError.badRequest("scope must be a string");
    if (many != null && (!many.isArray() || many.isEmpty() || many.size() > MAX_BROADCAST_SCOPES)) {
      return ProtocolError.badRequest("scopes must be an array of 1.." + MAX_BROADCAST_SCOPES + " scopes");
    }
    return eventProblem(item.fields()).map(ProtocolError::badRequest).orElse(null);
  }

  /** One scope's publish of a broadcast or batch item: {@link ScopeEntity.Published} or the {@link ProtocolError}. */
  private CompletableFuture<Object> outcome(JsonNode name, RawJson.Parsed item, Outgoing out) {
    ScopeNames.Checked scope = ScopeNames.check(name, settings::knowsType);
    if (!scope.ok()) return CompletableFuture.completedFuture(scope.error());
    JsonNode key = item.fields().get("idempotency_key");
    PublishReplies.Expected expected = replies.expect(timeout);
    out.add(scope.scope().toString(), new ScopeEntity.Publish(item.fields().get("event").asText(), item.payloadOrNull(),
        key == null || key.isNull() ? null : key.asText(), expected.replyTo(), expected.request()));
    return published(expected)
        .<Object>thenApply(p -> p)
        .exceptionally(e -> ProtocolError.of(io.scopecast.actors.protocol.ErrorCode.UNAVAILABLE,
            unwrap(e) instanceof PublishRefused refused ? refused.getMessage() + "; retry"
                : "scope did not answer within " + timeout.toMillis() + " ms; retry"));
  }

  /**
   * The publishes of one request, gathered per scope and sent once the request is read: one
   * message per scope, whose publishes the scope sequences together in their order.
   */
  private final class Outgoing {
    private final Map<String, List<ScopeEntity.Publish>> perScope = new LinkedHashMap<>();

    void add(String scope, ScopeEntity.Publish p) {
      perScope.computeIfAbsent(scope, k -> new ArrayList<>(1)).add(p);
    }

    void send() {
      perScope.forEach((scope, ps) -> scopes.apply(scope).tell(ps.size() == 1 ? ps.get(0) : new ScopeEntity.PublishBatch(List.copyOf(ps))));
    }
  }

  private static void writeOutcome(JsonGenerator g, JsonNode scope, Object outcome) throws IOException {
    g.writeStartObject();
    if (scope != null) {
      g.writeFieldName("scope");
      g.writeTree(scope);
    }
    if (outcome instanceof ScopeEntity.Published p) {
      g.writeStringField("epoch", p.epoch());
      g.writeNumberField("offset", p.offset());
    } else {
      ProtocolError e = (ProtocolError) outcome;
      g.writeObjectFieldStart("error");
      g.writeStringField("code", e.code().wire());
      g.writeStringField("message", e.message());
      g.writeEndObject();
    }
    g.writeEndObject();
  }

  /** bad_request problems of an event body: the event name and the idempotency key. */
  private static Optional<String> eventProblem(JsonNode body) {
    JsonNode event = body.get("event");
    if (event == null || !event.isTextual() || !EventNames.isValid(event.asText())) {
      return Optional.of("event must be 1..64 characters of [A-Za-z0-9_.:-]");
    }
    JsonNode key = body.get("idempotency_key");
    if (key != null && !key.isNull() && (!key.isTextual() || key.asText().isEmpty() || key.asText().length() > MAX_IDEMPOTENCY_KEY)) {
      return Optional.of("idempotency_key must be a string of 1.." + MAX_IDEMPOTENCY_KEY + " characters");
    }
    return Optional.empty();
  }

  /** Fails with {@link PublishRefused} when the scope refused it (it did not happen and may be retried). */
  private CompletionStage<ScopeEntity.Published> publishTo(ScopeId scope, JsonNode body, String payloadJson, String key) {
    String event = body.get("event").asText();
    PublishReplies.Expected expected = replies.expect(timeout);
    scopes.apply(scope.toString()).tell(new ScopeEntity.Publish(event, payloadJson, key, expected.replyTo(), expected.request()));
    return published(expected);
  }

  /** The scope's answer; fails with {@link PublishRefused} when the scope refused the publish. */
  private static CompletableFuture<ScopeEntity.Published> published(PublishReplies.Expected expected) {
    return expected.answer().thenApply(r -> {
      if (r instanceof ScopeEntity.Refused refused) throw new PublishRefused(refused.reason());
      return (ScopeEntity.Published) r;
    });
  }

  private static final class PublishRefused extends RuntimeException {
    PublishRefused(String reason) {
      super(reason, null, false, false);
    }
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
      return onComplete(page, r -> r.isFailure() ? complete(unavailable(scope.scope()))
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
      if (r.isFailure()) return complete(unavailable(scope.scope()));
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
    return onComplete(members, r -> r.isFailure() ? complete(unavailable(scope.scope()))
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
    return onComplete(kicked, r -> r.isFailure() ? complete(unavailable(scope))
        : complete(JsonResponses.ok(Json.object(g -> g.writeNumberField("connections", r.get().connections())))));
  }

  // ---- errors --------------------------------------------------------------------------------

  private HttpResponse unavailable(ScopeId scope) {
    return unavailable(scope, null);
  }

  private HttpResponse unavailable(ScopeId scope, Throwable cause) {
    long retry = Math.max(1, timeout.toSeconds());
    String why = cause != null && unwrap(cause) instanceof PublishRefused refused
        ? "scope " + scope + ": " + refused.getMessage()
        : "scope " + scope + " did not answer within " + timeout.toMillis() + " ms (its owner may be moving)";
    return JsonResponses.unavailable(why + "; retry with the same idempotency_key, which applies it at most once")
        .addHeader(RawHeader.create("Retry-After", Long.toString(retry)));
  }

  private static Throwable unwrap(Throwable e) {
    while ((e instanceof java.util.concurrent.CompletionException || e instanceof java.util.concurrent.ExecutionException)
        && e.getCause() != null) {
      e = e.getCause();
    }
    return e;
  }
}
