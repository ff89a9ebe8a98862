package io.scopecast.actors.connection;

/**
 * How the server ends a connection (§8): the code of the {@code disconnect} frame, its reason and
 * whether the client should reconnect. The constants are the server's own codes
 * ({@code docs/protocol.md}'s table of close codes lists the same rows); a backend's
 * {@code POST /api/disconnect} may choose {@link #byBackend any code of its own}.
 */
public record CloseCode(int code, boolean reconnect, String reason) {

  public static final CloseCode GOING_AWAY = new CloseCode(1001, true, "server shutting down");
  public static final CloseCode FRAME_TOO_LARGE = new CloseCode(1009, false, "frame larger than max-frame-bytes");
  public static final CloseCode NOT_AUTHENTICATED = new CloseCode(4001, false, "not authenticated");
  public static final CloseCode TOKEN_EXPIRED = new CloseCode(4002, true, "token expired");
  public static final CloseCode FORBIDDEN = new CloseCode(4003, false, "forbidden");
  public static final CloseCode SLOW_CONSUMER = new CloseCode(4008, true, "slow consumer: outbound buffer full");
  public static final CloseCode HEARTBEAT_TIMEOUT = new CloseCode(4009, true, "heartbeat timeout");
  public static final CloseCode FLOOD = new CloseCode(4029, true, "too many frames");
  public static final CloseCode PROTOCOL_VIOLATION = new CloseCode(4400, false, "protocol violation");

  /** What a backend's disconnect is when it names no code: {@link #FORBIDDEN}'s code, without reconnect. */
  public static final int BACKEND_DEFAULT = FORBIDDEN.code;

  public CloseCode {
    if (reason == null) throw new IllegalArgumentException("a close code needs a reason");
  }

  /** Codes a backend may choose: 1000, or 3000 to 4999 (RFC 6455's registered and private ranges). */
  public static boolean allowedForBackends(int code) {
    return code == 1000 || (code >= 3000 && code <= 4999);
  }

  /** A backend's disconnect ({@code POST /api/disconnect}). */
  public static CloseCode byBackend(int code, String reason, boolean reconnect) {
    if (!allowedForBackends(code)) throw new IllegalArgumentException("code must be 1000 or 3000..4999, got " + code);
    return new CloseCode(code, reconnect, reason);
  }

  /** The same code with a more specific reason. */
  public CloseCode because(String why) {
    return new CloseCode(code, reconnect, why);
  }
}
