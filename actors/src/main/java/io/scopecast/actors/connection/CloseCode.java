package io.scopecast.actors.connection;

/**
 * Every way the server ends a connection (§8): the code of the {@code disconnect} frame and
 * whether the client should reconnect. {@code docs/protocol.md}'s table of close codes lists the
 * same rows.
 */
public enum CloseCode {
  GOING_AWAY(1001, true, "server shutting down"),
  FRAME_TOO_LARGE(1009, false, "frame larger than max-frame-bytes"),
  NOT_AUTHENTICATED(4001, false, "not authenticated"),
  TOKEN_EXPIRED(4002, true, "token expired"),
  FORBIDDEN(4003, false, "forbidden"),
  SLOW_CONSUMER(4008, true, "slow consumer: outbound buffer full"),
  HEARTBEAT_TIMEOUT(4009, true, "heartbeat timeout"),
  FLOOD(4029, true, "too many frames"),
  PROTOCOL_VIOLATION(4400, false, "protocol violation");

  public final int code;
  public final boolean reconnect;
  public final String reason;

  CloseCode(int code, boolean reconnect, String reason) {
    this.code = code;
    this.reconnect = reconnect;
    this.reason = reason;
  }
}
