package io.scopecast.http;

import io.scopecast.actors.protocol.Json;
import io.scopecast.actors.protocol.ProtocolError;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;

/** JSON answers of the server API: bodies and the {@code {"error":{"code","message"}}} shape of §10. */
final class JsonResponses {
  private JsonResponses() {}

  static HttpResponse ok(String json) {
    return json(StatusCodes.OK, json);
  }

  static HttpResponse json(StatusCode status, String json) {
    return HttpResponse.create().withStatus(status).withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, json));
  }

  static HttpResponse error(StatusCode status, String code, String message) {
    return json(status, errorBody(code, message));
  }

  static HttpResponse error(StatusCode status, ProtocolError e) {
    return error(status, e.code().wire(), e.message());
  }

  static String errorBody(String code, String message) {
    return Json.object(g -> {
      g.writeObjectFieldStart("error");
      g.writeStringField("code", code);
      g.writeStringField("message", message);
      g.writeEndObject();
    });
  }

  static HttpResponse badRequest(String message) {
    return error(StatusCodes.BAD_REQUEST, "bad_request", message);
  }

  static HttpResponse unavailable(String message) {
    return error(StatusCodes.SERVICE_UNAVAILABLE, "unavailable", message);
  }
}
