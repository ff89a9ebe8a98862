package io.scopecast.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.scopecast.actors.scope.ScopeEntity;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** One actor per node takes every publish's answer and completes the publish it numbers. */
class PublishRepliesTest {
  private static final ActorTestKit testKit = ActorTestKit.create();

  @AfterAll
  static void shutdown() {
    testKit.shutdownTestKit();
  }

  @Test
  void eachAnswerCompletesThePublishItNumbersAndNoOther() throws Exception {
    PublishReplies replies = new PublishReplies(testKit.system(), "replies-a");
    PublishReplies.Expected first = replies.expect(Duration.ofSeconds(30));
    PublishReplies.Expected second = replies.expect(Duration.ofSeconds(30));
    assertNotEquals(first.request(), second.request());
    second.replyTo().tell(new ScopeEntity.Refused("full", second.request()));
    first.replyTo().tell(new ScopeEntity.Published("e1", 7, false, first.request()));
    assertEquals(new ScopeEntity.Published("e1", 7, false, first.request()), first.answer().get(5, TimeUnit.SECONDS));
    assertEquals(new ScopeEntity.Refused("full", second.request()), second.answer().get(5, TimeUnit.SECONDS));
    assertEquals(0, replies.waiting());
  }

  @Test
  void aPublishNotAnsweredInTimeFailsAndIsForgottenSoALateAnswerFindsNothing() throws Exception {
    PublishReplies replies = new PublishReplies(testKit.system(), "replies-b");
    PublishReplies.Expected silent = replies.expect(Duration.ofMillis(1));
    ExecutionException e = assertThrows(ExecutionException.class, () -> silent.answer().get(5, TimeUnit.SECONDS));
    assertInstanceOf(TimeoutException.class, e.getCause());
    assertEquals(0, replies.waiting());
    silent.replyTo().tell(new ScopeEntity.Published("e1", 1, false, silent.request())); // late: dropped
    PublishReplies.Expected next = replies.expect(Duration.ofSeconds(30));
    next.replyTo().tell(new ScopeEntity.Published("e1", 2, false, next.request()));
    assertEquals(2, ((ScopeEntity.Published) next.answer().get(5, TimeUnit.SECONDS)).offset());
  }
}
