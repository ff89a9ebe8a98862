package io.scopecast.http;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.protocol.EventNames;
import io.scopecast.actors.protocol.Json;
import io.scopecast.actors.protocol.ProtocolError;
import io.scopecast.actors.protocol.RawJson;
import io.scopecast.actors.protocol.ScopeId;
import io.scopecast.actors.protocol.ScopeNames;
import io.scopecast.actors.scope.ScopeEntity;
import io.scopecast.actors.settings.ScopecastSettings;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;

/**
 * The answers of the publishing endpoints ({@code /api/publish}, {@code /api/broadcast},
 * {@code /api/batch}) to a parsed body, without the routing DSL, so that both the routes and the
 * server's fast path ({@link ApiRoutes#publishFast}) use them. Each publish is a {@code tell} whose
 * answer comes through the node's {@link PublishReplies}; a request's publishes go to each scope
 * in one message.
 */
final class PublishAnswers {
  private static final int MAX_BROADCAST_SCOPES = 1000;
  static final int MAX_BATCH_ITEMS = 1000;
  static final int MAX_BATCH_PUBLISHES = 10_000;
  private static final int MAX_IDEMPOTENCY_KEY = 256;

  private final ScopecastSettings settings;
  private final Function<String, EntityRef<ScopeEntity.Command>> scopes;
  private final Duration timeout;
  private final PublishReplies replies;

  PublishAnswers(ScopecastSettings settings, Function<String, EntityRef<ScopeEntity.Command>> scopes, PublishReplies replies) {
    this.settings = settings;
    this.scopes = scopes;
    this.timeout = settings.api().timeout();
    this.replies = replies;
  }

  // ---- publish / broadcast -------------------------------------------------------------------

  /** The answer to a publish: 400 for bad fields, else {@code {epoch, offset}} once the scope has it, or 503. */
  CompletionStage<HttpResponse> publish(RawJson.Parsed parsed) {
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

  /** {@code POST /api/broadcast}: one event to every listed scope, answered scope by scope in their order. */
  CompletionStage<HttpResponse> broadcast(RawJson.Parsed parsed) {
    JsonNode body = parsed.fields();
    JsonNode list = body.get("scopes");
    if (list == null || !list.isArray() || list.isEmpty() || list.size() > MAX_BROADCAST_SCOPES) {
      return CompletableFuture.completedFuture(
          JsonResponses.badRequest("scopes must be an array of 1.." + MAX_BROADCAST_SCOPES + " scopes"));
    }
    Optional<String> problem = eventProblem(body);
    if (problem.isPresent()) return CompletableFuture.completedFuture(JsonResponses.badRequest(problem.get()));
    List<JsonNode> names = new ArrayList<>();
    List<CompletableFuture<Object>> results = new ArrayList<>();
    Outgoing out = new Outgoing();
    for (JsonNode name : list) {
      names.add(name);
      results.add(outcome(name, parsed, out));
    }
    out.send();
    return CompletableFuture.allOf(results.toArray(CompletableFuture[]::new)).thenApply(done -> JsonResponses.ok(Json.object(g -> {
      g.writeArrayFieldStart("results");
      for (int i = 0; i < names.size(); i++) writeOutcome(g, names.get(i), results.get(i).join());
      g.writeEndArray();
    })));
  }

  // ---- batch -------------------------------------------------------------------------------

  /**
   * {@code POST /api/batch {items:[…]}}: publishes ({@code scope}) and broadcasts ({@code scopes})
   * run in item order, so a scope gets its items' events in that order; answered item by item.
   */
  CompletionStage<HttpResponse> batch(RawJson.Parsed parsed) {
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

  // ---- errors --------------------------------------------------------------------------------

  /** 503 with {@code Retry-After}: the scope refused a publish ({@code cause}), or did not answer in time. */
  HttpResponse unavailable(ScopeId scope, Throwable cause) {
    long retry = Math.max(1, timeout.toSeconds());
    String why = cause != null && unwrap(cause) instanceof PublishRefused refused
        ? "scope " + scope + ": " + refused.getMessage()
        : "scope " + scope + " did not answer within " + timeout.toMillis() + " ms (its owner may be moving)";
    return JsonResponses.unavailable(why + "; retry with the same idempotency_key, which applies it at most once")
        .addHeader(RawHeader.create("Retry-After", Long.toString(retry)));
  }

  static Throwable unwrap(Throwable e) {
    while ((e instanceof java.util.concurrent.CompletionException || e instanceof java.util.concurrent.ExecutionException)
        && e.getCause() != null) {
      e = e.getCause();
    }
    return e;
  }
}
