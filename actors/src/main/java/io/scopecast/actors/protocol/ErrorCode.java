package io.scopecast.actors.protocol;

/**
 * Error codes of §9 and §13.1, in the precedence order of §13.17: when several apply, the one
 * declared first wins.
 */
public enum ErrorCode {
  BAD_REQUEST("bad_request"),
  BAD_SCOPE("bad_scope"),
  UNKNOWN_TYPE("unknown_type"),
  NOT_SUBSCRIBED("not_subscribed"),
  FORBIDDEN("forbidden"),
  LIMIT_EXCEEDED("limit_exceeded"),
  RATE_LIMITED("rate_limited"),
  UNAVAILABLE("unavailable");

  private final String wire;

  ErrorCode(String wire) {
    this.wire = wire;
  }

  public String wire() {
    return wire;
  }
}
