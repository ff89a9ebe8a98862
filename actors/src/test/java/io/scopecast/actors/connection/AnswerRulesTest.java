package io.scopecast.actors.connection;

import static io.scopecast.actors.connection.AnswerRules.PageOutcome.EVICT;
import static io.scopecast.actors.connection.AnswerRules.PageOutcome.LIVE;
import static io.scopecast.actors.connection.AnswerRules.PageOutcome.MORE;
import static io.scopecast.actors.connection.AnswerRules.PageOutcome.RESYNC;
import static io.scopecast.actors.connection.AnswerRules.PageOutcome.WAIT_FOR_EMPTY;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.scopecast.actors.connection.AnswerRules.Resync;
import io.scopecast.actors.connection.AnswerRules.StartAt;
import io.scopecast.actors.connection.Subscription.CatchUp;
import io.scopecast.actors.connection.Subscription.Reason;
import io.scopecast.actors.auth.ScopeAuthorizer.Decision;
import io.scopecast.actors.protocol.ErrorCode;
import io.scopecast.actors.protocol.Position;
import io.scopecast.actors.protocol.ProtocolError;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The answer and page rules as tables: inputs on the left, the decision on the right. */
class AnswerRulesTest {

  @Test
  void aSubscriptionIsRefusedWhenDeniedWhenTheAuthorizerCannotSayOrBeyondTheLimit() {
    record Row(Decision decision, long held, ErrorCode refused) {}
    for (Row row : List.of(
        new Row(Decision.ALLOW, 9, null),
        new Row(Decision.ALLOW, 10, ErrorCode.LIMIT_EXCEEDED),
        new Row(Decision.FORBIDDEN, 0, ErrorCode.FORBIDDEN),
        new Row(Decision.UNAVAILABLE, 0, ErrorCode.UNAVAILABLE), // fails closed
        new Row(Decision.FORBIDDEN, 10, ErrorCode.FORBIDDEN))) {
      ProtocolError e = AnswerRules.refusal(row.decision(), "task:9", row.held(), 10);
      assertEquals(row.refused(), e == null ? null : e.code(), row.toString());
      if (e != null) assertTrue(e.message().contains(row.refused() == ErrorCode.LIMIT_EXCEEDED ? "10" : "task:9"), e.message());
    }
  }

  @Test
  void aFirstAnswerStartsFromTheClientsPositionWhenRecoverableElseFromTheOwnersOffset() {
    Position since = new Position("e1", 3);
    assertEquals(new StartAt("e1", 3), AnswerRules.firstAnswer(since, "e1", 9, true), "replay 4..9");
    assertEquals(new StartAt("e1", 9), AnswerRules.firstAnswer(since, "e1", 9, false), "history lost: from now");
    assertEquals(new StartAt("e1", 9), AnswerRules.firstAnswer(null, "e1", 9, true), "no position asked: from now");
    assertTrue(AnswerRules.toldRecovered(null, false), "recovered is true when no since was given (§13.4)");
    assertFalse(AnswerRules.toldRecovered(since, false));
  }

  @Test
  void reanswersContinueWithoutDuplicatesOrTellTheClientToResync() {
    Position behind = new Position("e1", 2);
    Position ahead = new Position("e1", 8);
    // why, since, delivering in e1 at 5, owner's epoch and offset, recovered -> next
    assertEquals(new StartAt("e1", 5), AnswerRules.reanswer(Reason.FAILOVER, behind, "e1", 5, "e1", 9, true));
    assertEquals(new Resync("e1", 9, "owner_lost_history"),
        AnswerRules.reanswer(Reason.FAILOVER, behind, "e1", 5, "e1", 9, false));
    assertEquals(new Resync("e2", 0, "epoch_changed"), AnswerRules.reanswer(Reason.FAILOVER, behind, "e1", 5, "e2", 0, false));
    assertEquals(new Resync("e2", 4, "epoch_changed"), AnswerRules.reanswer(Reason.EXPLICIT, ahead, "e1", 5, "e2", 4, true));
    assertEquals(new StartAt("e1", 8), AnswerRules.reanswer(Reason.EXPLICIT, ahead, "e1", 5, "e1", 9, true),
        "only offsets after since are sent");
    assertEquals(new StartAt("e1", 5), AnswerRules.reanswer(Reason.EXPLICIT, behind, "e1", 5, "e1", 9, true),
        "nor any already delivered");
    assertEquals(new StartAt("e1", 9), AnswerRules.reanswer(Reason.EXPLICIT, ahead, "e1", 5, "e1", 9, false),
        "told recovered:false at 9, the client gets 10 next, not 6");
    assertEquals(new StartAt("e1", 9), AnswerRules.reanswer(Reason.EXPLICIT, behind, "e1", 5, "e1", 9, false),
        "behind or ahead: recovered:false continues from the owner's offset");
    assertEquals(new StartAt("e1", 7), AnswerRules.reanswer(Reason.EXPLICIT, behind, "e1", 7, "e1", 6, false),
        "and never sends an offset twice");
  }

  @Test
  void aHistoryPageEndsTheCatchUpContinuesItOrFindsHistoryGone() {
    // went live, taken, page holds the next offset, why -> outcome
    assertEquals(LIVE, AnswerRules.afterPage(true, 3, true, CatchUp.REPLAY));
    assertEquals(MORE, AnswerRules.afterPage(false, 3, true, CatchUp.REPLAY));
    assertEquals(WAIT_FOR_EMPTY, AnswerRules.afterPage(false, 0, true, CatchUp.BEHIND),
        "the next event is larger than the free room: read it again once the buffer is empty");
    assertEquals(RESYNC, AnswerRules.afterPage(false, 0, false, CatchUp.REPLAY), "a replay never evicts");
    assertEquals(EVICT, AnswerRules.afterPage(false, 0, false, CatchUp.BEHIND), "a slow client history cannot supply");
  }
}
