package io.scopecast.actors.auth;

/** A token that is malformed, badly signed, expired, or lacks a required claim. */
public final class InvalidTokenException extends Exception {
  public InvalidTokenException(String message) {
    super(message, null, false, false);
  }
}
