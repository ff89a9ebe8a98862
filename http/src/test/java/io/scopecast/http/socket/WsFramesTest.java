package io.scopecast.http.socket;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.util.ByteString;
import org.junit.jupiter.api.Test;

/** RFC 6455's duties on the server side, as tables: client bytes on the left, events on the right. */
class WsFramesTest {
  private static final byte[] MASK = {0x11, 0x22, 0x33, 0x44};

  /** A client frame; {@code masked} false breaks the RFC. */
  private static byte[] frame(boolean fin, int opcode, byte[] payload, boolean masked, long claimedLength) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write((fin ? 0x80 : 0) | opcode);
    int m = masked ? 0x80 : 0;
    if (claimedLength < 126) {
      out.write(m | (int) claimedLength);
    } else if (claimedLength <= 0xFFFF) {
      out.write(m | 126);
      out.write((int) (claimedLength >>> 8));
      out.write((int) claimedLength);
    } else {
      out.write(m | 127);
      for (int shift = 56; shift >= 0; shift -= 8) out.write((int) (claimedLength >>> shift));
    }
    if (masked) out.writeBytes(MASK);
    for (int i = 0; i < payload.length; i++) out.write(masked ? payload[i] ^ MASK[i & 3] : payload[i]);
    return out.toByteArray();
  }

  private static byte[] frame(boolean fin, int opcode, String text) {
    byte[] p = text.getBytes(StandardCharsets.UTF_8);
    return frame(fin, opcode, p, true, p.length);
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) out.writeBytes(p);
    return out.toByteArray();
  }

  private static List<WsFrames.Event> decode(byte[] bytes, int chunk) {
    WsFrames.Decoder d = new WsFrames.Decoder(1000);
    List<WsFrames.Event> out = new ArrayList<>();
    for (int i = 0; i < bytes.length; i += chunk) {
      out.addAll(d.feed(ByteString.fromArray(bytes, i, Math.min(chunk, bytes.length - i))));
    }
    return out;
  }

  @Test
  void clientBytesBecomeMessagesOrTheCodeTheRfcPrescribes() {
    byte[] euro = "\u20ac".getBytes(StandardCharsets.UTF_8); // 3 bytes, split across fragments below
    record Row(String what, byte[] bytes, List<WsFrames.Event> events) {}
    List<Row> rows = List.of(
        new Row("a text frame", frame(true, WsFrames.TEXT, "{\"type\":\"ping\"}"), List.of(new WsFrames.Text("{\"type\":\"ping\"}"))),
        new Row("fragments with a ping between them, a character split across them",
            concat(frame(false, WsFrames.TEXT, new byte[] {'a', euro[0]}, true, 2), frame(true, WsFrames.PING, "p"),
                frame(false, 0, new byte[] {euro[1]}, true, 1), frame(true, 0, new byte[] {euro[2], 'b'}, true, 2)),
            List.of(new WsFrames.Ping(ByteString.fromString("p")), new WsFrames.Text("a\u20acb"))),
        new Row("an unmasked frame", frame(true, WsFrames.TEXT, "x".getBytes(StandardCharsets.UTF_8), false, 1),
            List.of(new WsFrames.Violation(1002, "client frames must be masked"))),
        new Row("reserved bits", concat(new byte[] {(byte) 0xC1}, new byte[] {(byte) 0x80}, MASK),
            List.of(new WsFrames.Violation(1002, "reserved bits set without an extension"))),
        new Row("an unknown opcode", frame(true, 0x3, ""), List.of(new WsFrames.Violation(1002, "unknown opcode 3"))),
        new Row("a fragmented ping", frame(false, WsFrames.PING, ""),
            List.of(new WsFrames.Violation(1002, "a control frame must be whole and at most 125 bytes"))),
        new Row("a continuation first", frame(true, 0, "x"), List.of(new WsFrames.Violation(1002, "a continuation without a message"))),
        new Row("a new message inside another", concat(frame(false, WsFrames.TEXT, "a"), frame(true, WsFrames.TEXT, "b")),
            List.of(new WsFrames.Violation(1002, "a new message before the last one ended"))),
        new Row("invalid UTF-8, caught in the first fragment", concat(frame(false, WsFrames.TEXT, new byte[] {(byte) 0xC3, 0x28}, true, 2)),
            List.of(new WsFrames.Violation(1007, "a text message must be UTF-8"))),
        new Row("a message cut inside a character", frame(true, WsFrames.TEXT, new byte[] {euro[0], euro[1]}, true, 2),
            List.of(new WsFrames.Violation(1007, "a text message must be UTF-8"))),
        new Row("a header claiming 2^62 bytes, no payload", frame(true, WsFrames.TEXT, new byte[0], true, 1L << 62),
            List.of(new WsFrames.Violation(1009, "message larger than 1000 bytes"))),
        new Row("fragments adding up past the limit", concat(frame(false, WsFrames.TEXT, "x".repeat(600)), frame(true, 0, "y".repeat(600))),
            List.of(new WsFrames.Violation(1009, "message larger than 1000 bytes"))),
        new Row("a close with code and reason, then nothing more", concat(frame(true, WsFrames.CLOSE, concat(new byte[] {0x03, (byte) 0xE8},
            "bye".getBytes(StandardCharsets.UTF_8)), true, 5), frame(true, WsFrames.TEXT, "late")), List.of(new WsFrames.Close(1000, "bye"))),
        new Row("a close without a code", frame(true, WsFrames.CLOSE, ""), List.of(new WsFrames.Close(1005, ""))),
        new Row("a binary message", frame(true, WsFrames.BINARY, new byte[7], true, 7), List.of(new WsFrames.Binary(7))));
    for (Row row : rows) {
      for (int chunk : new int[] {1, 3, 1 << 20}) { // however the bytes arrive
        assertEquals(row.events(), decode(row.bytes(), chunk), row.what() + " in chunks of " + chunk);
      }
    }
  }

  @Test
  void serverFramesAreUnmaskedWithTheShortestLengthAndCloseReasonsAreCutAtACharacter() {
    assertEquals(ByteString.fromArray(new byte[] {(byte) 0x81, 2, 'h', 'i'}), WsFrames.text("hi"));
    ByteString medium = WsFrames.text("x".repeat(300));
    assertEquals(List.of(0x81, 126, 1, 44), List.of(medium.apply(0) & 0xFF, medium.apply(1) & 0xFF, medium.apply(2) & 0xFF,
        medium.apply(3) & 0xFF));
    ByteString large = WsFrames.text("x".repeat(70_000));
    assertEquals(127, large.apply(1) & 0xFF);
    assertEquals(70_000 + 10, large.size());
    ByteString close = WsFrames.close(4008, "\u00e9".repeat(100)); // 200 bytes of reason, cut to 122 (61 whole characters)
    assertEquals(0x88, close.apply(0) & 0xFF);
    assertEquals(2 + 122, close.apply(1) & 0xFF);
    assertEquals(4008, ((close.apply(2) & 0xFF) << 8) | (close.apply(3) & 0xFF));
  }
}
