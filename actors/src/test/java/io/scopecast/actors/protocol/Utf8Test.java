package io.scopecast.actors.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class Utf8Test {

  @Test
  void lengthsAreThoseOfTheEncodedBytes() {
    for (String s : List.of("", "abc", "é", "€", "日本語", "\uD83D\uDE00", "a\uD83D\uDE00b€é")) {
      assertEquals(s.getBytes(StandardCharsets.UTF_8).length, Utf8.encodedLength(s), s);
    }
  }

  @Test
  void aLoneSurrogateCountsAsItsThreeByteReplacement() {
    assertEquals(3, Utf8.encodedLength("\uD83D"));
    assertEquals(5, Utf8.encodedLength("\uD83Dab"));
    assertEquals(3, Utf8.encodedLength("\uDE00"));
  }
}
