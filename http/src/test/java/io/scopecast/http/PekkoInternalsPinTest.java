package io.scopecast.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Constructor;
import java.lang.reflect.Modifier;
import org.junit.jupiter.api.Test;

/**
 * Taking the socket over after the WebSocket upgrade (issue 22) relies on pekko-http internals:
 * {@code UpgradeToOtherProtocolResponseHeader}, {@code private[http]} in Scala but with a public
 * constructor in bytecode, and how the server switches protocols on a 101 that carries it. These
 * checks fail on an upgrade of either library, so that whoever upgrades re-reads that code first.
 */
class PekkoInternalsPinTest {
  private static final String RECHECK = "re-read pekko-http's UpgradeToOtherProtocolResponseHeader and how"
      + " HttpServerBluePrint switches protocols on a 101 (and that the 101 needs the modeled Connection header)"
      + " before changing this pin";

  @Test
  void theVersionsAreTheOnesTheUpgradePathWasReadAgainst() {
    assertEquals("1.7.0", org.apache.pekko.Version.current(), "pekko: " + RECHECK);
    assertEquals("1.3.0", org.apache.pekko.http.Version.current(), "pekko-http: " + RECHECK);
  }

  @Test
  void theUpgradeHeaderCanBeBuiltFromAByteFlow() throws Exception {
    Class<?> header = Class.forName("org.apache.pekko.http.impl.engine.server.UpgradeToOtherProtocolResponseHeader");
    Constructor<?> make = header.getConstructor(org.apache.pekko.stream.scaladsl.Flow.class);
    assertTrue(Modifier.isPublic(make.getModifiers()), RECHECK);
    assertTrue(org.apache.pekko.http.scaladsl.model.HttpHeader.class.isAssignableFrom(header), RECHECK);
  }
}
