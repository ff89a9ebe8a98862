package io.scopecast.actors.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonProcessingException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Payloads cut out of their object unchanged (§13.23), from bytes and from text alike. */
class RawJsonTest {

  private static RawJson.Parsed fromBytes(String json) throws JsonProcessingException {
    return RawJson.object(json.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void aPayloadKeepsItsTextExactlyWhateverItHolds() throws Exception {
    String longNumber = "9".repeat(2000);
    record Row(String object, String payload) {}
    List<Row> rows = List.of(
        new Row("{\"scope\":\"t:1\",\"payload\":%s,\"event\":\"e\"}",
            "{\"price\":123456789012345678.5,\"exp\":1e2,\"frac\":0.10,\"zeroes\":[1.0,2.50,3e0]}"),
        new Row("{\"payload\":%s}", longNumber),
        new Row("{\"payload\" :  %s  , \"x\":2}", "{ \"b\" : 1 ,\n \"a\" : [ -0.0 , 1E-7 ] }"), // key order and inner spacing
        new Row("{\"a\":1,\"payload\":%s}", "[1, 2]"),
        new Row("{\"payload\":%s}", "\"caf\\u00e9 \\ud83d\\ude00 caf\u00e9\""), // escapes stay, a pair is fine
        new Row("{\"payload\":%s}", "true"),
        new Row("{\"payload\":%s,\"x\":[]}", "null"));
    for (Row row : rows) {
      String json = row.object().formatted(row.payload());
      assertEquals(row.payload(), fromBytes(json).payload(), json);
      assertEquals(row.payload(), RawJson.object(json).payload(), json);
    }
  }

  @Test
  void theOtherFieldsAreATreeAndAMissingPayloadIsTheNullLiteral() throws Exception {
    RawJson.Parsed p = fromBytes("{\"type\":\"publish\",\"id\":7,\"scope\":\"chat:7\"}");
    assertEquals("publish", p.fields().get("type").asText());
    assertEquals(7, p.fields().get("id").asInt());
    assertNull(p.payload());
    assertEquals("null", p.payloadOrNull());
    assertFalse(fromBytes("{\"payload\":{\"id\":1},\"id\":2}").fields().has("payload"));
  }

  @Test
  void aPayloadThatCannotTravelVerbatimIsRefusedSayingWhy() {
    record Row(byte[] object, String says) {}
    byte[] invalidUtf8 = bytes("{\"id\":3,\"payload\":\"abc\"}");
    invalidUtf8[invalidUtf8.length - 4] = (byte) 0xC3; // "a\xC3c": a lead byte followed by one that is not a continuation
    List<Row> rows = List.of(
        new Row(bytes("{\"id\":3,\"payload\":{\"k\":\"\\ud800\"}}"), "lone surrogate"),
        new Row(bytes("{\"id\":3,\"payload\":{\"\\udc00\":1}}"), "lone surrogate"), // in a key too
        new Row(invalidUtf8, "not valid UTF-8"),
        new Row(bytes("{\"id\":3,\"payload\":" + "[".repeat(300) + "]".repeat(300) + "}"), "nested deeper than 256"));
    for (Row row : rows) {
      RawJson.PayloadRefused e = assertThrows(RawJson.PayloadRefused.class, () -> RawJson.object(row.object()),
          new String(row.object(), StandardCharsets.UTF_8));
      assertTrue(e.getOriginalMessage().contains(row.says()), e.getOriginalMessage());
      assertEquals(3, e.fieldsBefore().get("id").asInt(), "the fields before the payload are kept, to echo the id");
    }
  }

  @Test
  void anythingButOneObjectIsNotAccepted() {
    assertInstanceOf(RawJson.NotAnObject.class, assertThrows(JsonProcessingException.class, () -> fromBytes("[1,2]")));
    for (String bad : List.of("", "{\"a\":", "{\"payload\":[1,}", "{} {}", "{\"a\":1}x", "nope")) {
      JsonProcessingException e = assertThrows(JsonProcessingException.class, () -> fromBytes(bad), bad);
      assertFalse(e instanceof RawJson.PayloadRefused || e instanceof RawJson.NotAnObject, bad + ": " + e);
    }
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
