package io.scopecast.actors.protocol;

/** A refusal with its code and a human-readable message. */
public record ProtocolError(ErrorCode code, String message) {
  public static ProtocolError badRequest(String message) {
    return new ProtocolError(ErrorCode.BAD_REQUEST, message);
  }

  public static ProtocolError of(ErrorCode code, String message) {
    return new ProtocolError(code, message);
  }
}
