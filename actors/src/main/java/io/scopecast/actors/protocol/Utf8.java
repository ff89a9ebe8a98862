package io.scopecast.actors.protocol;

/** Sizes in bytes, as they go over the wire, of text held as Java strings (UTF-16). */
public final class Utf8 {

  private Utf8() {}

  /** The UTF-8 length of {@code s}; a lone surrogate counts as the 3 bytes of its replacement. */
  public static long encodedLength(CharSequence s) {
    long n = 0;
    int len = s.length();
    for (int i = 0; i < len; i++) {
      char c = s.charAt(i);
      if (c < 0x80) {
        n += 1;
      } else if (c < 0x800) {
        n += 2;
      } else if (Character.isHighSurrogate(c) && i + 1 < len && Character.isLowSurrogate(s.charAt(i + 1))) {
        n += 4;
        i++;
      } else {
        n += 3;
      }
    }
    return n;
  }
}
