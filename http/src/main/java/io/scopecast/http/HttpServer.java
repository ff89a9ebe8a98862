package io.scopecast.http;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.stream.Collectors;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.ExceptionHandler;
import org.apache.pekko.http.javadsl.server.MethodRejection;
import org.apache.pekko.http.javadsl.server.RejectionHandler;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.japi.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * All routes of a node behind one JSON rejection and exception handler (404, 405; nothing a client
 * sends produces a stack trace in the answer), bound with pekko-http's server settings from config.
 */
public final class HttpServer extends AllDirectives {
  private static final Logger log = LoggerFactory.getLogger(HttpServer.class);

  private final Route routes;
  private final ApiRoutes api;

  /** @param more further routes (the demo), or none */
  public HttpServer(WebSocketEndpoint ws, ApiRoutes api, HealthRoutes health, Route... more) {
    this.api = api;
    Route all = concat(ws.route(), api.route(), health.route());
    for (Route r : more) all = concat(all, r);
    Route routes = all;
    ExceptionHandler exceptions = exceptions();
    RejectionHandler rejections = rejections();
    this.routes = handleExceptions(exceptions, () -> handleRejections(rejections, () -> routes));
  }

  public Route routes() {
    return routes;
  }

  /**
   * Binds the routes behind one function: {@code POST /api/publish} with a body that arrived whole
   * is answered without the routing DSL ({@link ApiRoutes#publishFast}, the hot path of backends);
   * every other request goes through the sealed routes.
   */
  public CompletionStage<ServerBinding> bind(ActorSystem<?> system, String host, int port) {
    Function<HttpRequest, CompletionStage<HttpResponse>> sealed = routes.handler(system);
    Function<HttpRequest, CompletionStage<HttpResponse>> handler = request -> {
      CompletionStage<HttpResponse> fast;
      try {
        fast = api.publishFast(request);
      } catch (RuntimeException e) { // as the routes' exception handler does
        log.error("request failed", e);
        return CompletableFuture.completedFuture(
            JsonResponses.error(StatusCodes.INTERNAL_SERVER_ERROR, "internal", "internal error"));
      }
      return fast != null ? fast : sealed.apply(request);
    };
    return Http.get(system).newServerAt(host, port).bind(handler);
  }

  private RejectionHandler rejections() {
    return RejectionHandler.newBuilder()
        .handleAll(MethodRejection.class, (List<MethodRejection> rs) -> complete(JsonResponses.error(
            StatusCodes.METHOD_NOT_ALLOWED, "method_not_allowed",
            "use " + rs.stream().map(r -> r.supported().name()).distinct().collect(Collectors.joining(", ")))))
        .handleNotFound(complete(JsonResponses.error(StatusCodes.NOT_FOUND, "not_found", "no such endpoint")))
        .build()
        .withFallback(RejectionHandler.defaultHandler())
        .mapRejectionResponse(r -> r.entity().getContentType().equals(org.apache.pekko.http.javadsl.model.ContentTypes.APPLICATION_JSON)
            ? r
            : JsonResponses.error(r.status(), "bad_request", "request refused (" + r.status().intValue() + ")"));
  }

  private ExceptionHandler exceptions() {
    return ExceptionHandler.newBuilder()
        .matchAny(e -> {
          log.error("request failed", e);
          return complete(JsonResponses.error(StatusCodes.INTERNAL_SERVER_ERROR, "internal", "internal error"));
        })
        .build();
  }
}
