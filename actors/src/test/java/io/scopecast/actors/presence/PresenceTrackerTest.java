package io.scopecast.actors.presence;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.scopecast.actors.protocol.Json;
import io.scopecast.actors.protocol.ServerFrames;
import java.util.List;
import org.junit.jupiter.api.Test;

class PresenceTrackerTest {
  private final PresenceTracker<String> tracker = new PresenceTracker<>("chat:1", 3);

  private static List<String> types(List<PresenceTracker.Announcement<String>> out) {
    return out.stream().map(a -> parse(a.frame()).get("type").asText() + ":" + parse(a.frame()).path("user").asText()).toList();
  }

  private static JsonNode parse(String s) {
    try {
      return Json.parse(s);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void aUserLeavesOnlyWhenTheirLastConnectionGoes() {
    assertTrue(tracker.connectionAdded("ann", "tab1", null, null));
    assertFalse(tracker.connectionAdded("ann", "tab2", null, null));
    assertEquals(List.of("presence.join:ann"), types(tracker.flush()));
    assertEquals(List.of(new ServerFrames.Member("ann", 2, "online", "")), tracker.members());

    assertFalse(tracker.connectionRemoved("ann", "tab1"));
    assertTrue(tracker.flush().isEmpty(), "one tab closing is no leave");
    assertTrue(tracker.connectionRemoved("ann", "tab2"));
    assertEquals(List.of("presence.leave:ann"), types(tracker.flush()));
    assertTrue(tracker.members().isEmpty());
  }

  @Test
  void theConnectionThatCausedAChangeIsNotToldAboutIt() {
    tracker.connectionAdded("ann", "tab1", null, null);
    assertEquals("tab1", tracker.flush().get(0).except());
  }

  @Test
  void changesWithinOneBatchAreCoalesced() {
    tracker.connectionAdded("ann", "a", null, null);
    tracker.connectionAdded("bob", "b", null, null);
    tracker.connectionRemoved("bob", "b"); // joined and left before anyone was told: nothing to say
    tracker.statusChanged("ann", "a", "away", "lunch");
    tracker.statusChanged("ann", "a", "busy", "call");
    List<PresenceTracker.Announcement<String>> out = tracker.flush();
    assertEquals(List.of("presence.join:ann"), types(out));
    JsonNode join = parse(out.get(0).frame());
    assertEquals("busy", join.get("status").asText());
    assertEquals("call", join.get("text").asText());

    tracker.statusChanged("ann", "a", "away", "");
    tracker.statusChanged("ann", "a", "busy", "call"); // back to what was announced
    assertTrue(tracker.flush().isEmpty());

    tracker.statusChanged("ann", "a", "online", "");
    assertEquals(List.of("presence.update:ann"), types(tracker.flush()));
  }

  @Test
  void aReconnectWithinOneBatchIsALeaveAndAJoinForThoseWhoSawTheUser() {
    tracker.connectionAdded("ann", "a", null, null);
    tracker.flush();
    tracker.connectionRemoved("ann", "a");
    tracker.connectionAdded("ann", "a2", "away", "");
    List<PresenceTracker.Announcement<String>> out = tracker.flush();
    assertEquals(List.of("presence.leave:ann", "presence.join:ann"), types(out), "§13.19: no transition is cancelled");
    assertTrue(out.get(0).leave());
    assertEquals("a2", out.get(1).except());
    assertEquals("away", parse(out.get(1).frame()).get("status").asText());
  }

  @Test
  void joinUpdateAndLeaveInOneBatchAreALeaveForThoseWhoSawTheUserAndNothingForOthers() {
    tracker.connectionAdded("ann", "a", null, null);
    tracker.flush(); // ann was announced
    tracker.connectionAdded("bob", "b", null, null);
    tracker.statusChanged("bob", "b", "busy", "");
    tracker.connectionRemoved("bob", "b");
    tracker.statusChanged("ann", "a", "away", "");
    tracker.connectionRemoved("ann", "a");
    assertEquals(List.of("presence.leave:ann"), types(tracker.flush()),
        "bob was never announced; ann was, so her leave is owed even though her update is moot");
  }

  @Test
  void anUpdateSkipsTheConnectionWhoseStatusFrameCausedItNotTheUsersOtherTabs() {
    tracker.connectionAdded("ann", "tab1", null, null);
    tracker.connectionAdded("ann", "tab2", null, null);
    tracker.flush();
    tracker.statusChanged("ann", "tab2", "away", "lunch"); // tab2 sent the status frame
    assertFalse(tracker.statusChanged("ann", "tab2", "away", "lunch"), "the same status from the other tab's echo is no change");
    List<PresenceTracker.Announcement<String>> out = tracker.flush();
    assertEquals(List.of("presence.update:ann"), types(out));
    assertEquals("tab2", out.get(0).except(), "tab1 is told, tab2 is not");
  }

  @Test
  void aboveMaxDetailedMembersOneCountFrameReplacesPerUserFrames() {
    for (String u : List.of("a", "b", "c")) tracker.connectionAdded(u, u, null, null);
    assertEquals(3, tracker.flush().size());
    tracker.connectionAdded("d", "d", null, null);
    tracker.connectionAdded("e", "e", null, null);
    tracker.connectionRemoved("a", "a");
    List<PresenceTracker.Announcement<String>> out = tracker.flush();
    assertEquals(1, out.size());
    JsonNode count = parse(out.get(0).frame());
    assertEquals("presence.count", count.get("type").asText());
    assertEquals(4, count.get("members").asInt());
    assertEquals(2, count.get("joined").asInt());
    assertEquals(1, count.get("left").asInt());

    tracker.connectionRemoved("d", "d");
    tracker.connectionRemoved("e", "e");
    tracker.connectionAdded("f", "f", null, null);
    assertEquals(List.of("presence.leave:d", "presence.leave:e", "presence.join:f"), types(tracker.flush()),
        "back under the limit, per-user frames again");
  }
}
