package io.scopecast.actors.history;

import java.security.SecureRandom;

/** New epoch names: 12 random base-62 characters. */
public final class Epochs {
  private static final char[] ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".toCharArray();
  private static final SecureRandom RANDOM = new SecureRandom();

  private Epochs() {}

  public static String next() {
    char[] c = new char[12];
    for (int i = 0; i < c.length; i++) c[i] = ALPHABET[RANDOM.nextInt(ALPHABET.length)];
    return new String(c);
  }
}
