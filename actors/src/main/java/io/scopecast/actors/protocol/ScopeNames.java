package io.scopecast.actors.protocol;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.function.Predicate;

/** Turns a scope given by a client or a backend into a {@link ScopeId}, or the §13.1 error. */
public final class ScopeNames {
  private ScopeNames() {}

  /** A checked scope: exactly one of {@code scope} and {@code error} is set. */
  public record Checked(ScopeId scope, ProtocolError error) {
    public boolean ok() {
      return scope != null;
    }
  }

  public static Checked check(String text, Predicate<String> knownType) {
    ScopeId id = ScopeId.parseOrNull(text);
    if (id == null) {
      return new Checked(null, ProtocolError.of(ErrorCode.BAD_SCOPE, "scope must be TYPE:ID, e.g. task:9"));
    }
    if (!knownType.test(id.type())) {
      return new Checked(null, ProtocolError.of(ErrorCode.UNKNOWN_TYPE, "scope type '" + id.type() + "' is not configured"));
    }
    return new Checked(id, null);
  }

  /** As {@link #check(String, Predicate)} for a JSON field: missing or not a string is bad_request. */
  public static Checked check(JsonNode field, Predicate<String> knownType) {
    if (field == null || field.isNull() || field.isMissingNode()) {
      return new Checked(null, ProtocolError.badRequest("scope is required"));
    }
    if (!field.isTextual()) return new Checked(null, ProtocolError.badRequest("scope must be a string"));
    return check(field.asText(), knownType);
  }
}
