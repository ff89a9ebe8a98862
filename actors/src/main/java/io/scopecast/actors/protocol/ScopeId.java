package io.scopecast.actors.protocol;

import java.util.regex.Pattern;

/** A scope name {@code TYPE:ID} (§1). Instances are always well-formed. */
public record ScopeId(String type, String id) {
  private static final Pattern TYPE = Pattern.compile("[a-z][a-z0-9_]{0,31}");
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9_.\\-]{1,128}");

  public ScopeId {
    if (!isValidType(type) || !isValidId(id)) throw new IllegalArgumentException("not a scope: " + type + ":" + id);
  }

  public static boolean isValidType(String type) {
    return type != null && TYPE.matcher(type).matches();
  }

  public static boolean isValidId(String id) {
    return id != null && ID.matcher(id).matches();
  }

  /** Parses {@code TYPE:ID}; {@code null} when the text is not a well-formed scope name. */
  public static ScopeId parseOrNull(String text) {
    if (text == null) return null;
    int colon = text.indexOf(':');
    if (colon <= 0 || colon != text.lastIndexOf(':')) return null;
    String type = text.substring(0, colon);
    String id = text.substring(colon + 1);
    return isValidType(type) && isValidId(id) ? new ScopeId(type, id) : null;
  }

  public static ScopeId of(String text) {
    ScopeId s = parseOrNull(text);
    if (s == null) throw new IllegalArgumentException("not a scope: " + text);
    return s;
  }

  public static ScopeId user(String userId) {
    return new ScopeId("user", userId);
  }

  public static ScopeId workspace(String workspaceId) {
    return new ScopeId("workspace", workspaceId);
  }

  @Override
  public String toString() {
    return type + ":" + id;
  }
}
