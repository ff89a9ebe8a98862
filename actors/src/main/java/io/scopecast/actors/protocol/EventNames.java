package io.scopecast.actors.protocol;

import java.util.regex.Pattern;

/** Event names (§1): 1..64 characters of {@code [A-Za-z0-9_.:-]}. */
public final class EventNames {
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.:\\-]{1,64}");

  private EventNames() {}

  public static boolean isValid(String name) {
    return name != null && NAME.matcher(name).matches();
  }
}
