package io.scopecast.client;

/**
 * An API call that failed: {@code status} is the HTTP status (0: no answer), {@code code} the
 * server's error code ({@code bad_request}, {@code bad_scope}, {@code unknown_type},
 * {@code unavailable}, …) or {@code network}.
 */
public final class ScopecastException extends RuntimeException {
  private final int status;
  private final String code;

  public ScopecastException(int status, String code, String message) {
    super(code + ": " + message);
    this.status = status;
    this.code = code;
  }

  public ScopecastException(int status, String code, String message, Throwable cause) {
    super(code + ": " + message, cause);
    this.status = status;
    this.code = code;
  }

  public int status() {
    return status;
  }

  public String code() {
    return code;
  }
}
