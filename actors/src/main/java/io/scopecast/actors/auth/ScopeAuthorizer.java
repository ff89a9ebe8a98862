package io.scopecast.actors.auth;

import io.scopecast.actors.protocol.ScopeId;
import java.util.concurrent.CompletionStage;

/**
 * Decides whether a user may subscribe to a scope (§9). Implementations fail closed: any doubt is
 * {@link Decision#FORBIDDEN} or {@link Decision#UNAVAILABLE}, never {@link Decision#ALLOW}.
 */
public interface ScopeAuthorizer {

  enum Decision {
    ALLOW,
    FORBIDDEN,
    /** The decision could not be made (e.g. the hook is down or slow): refused. */
    UNAVAILABLE
  }

  /**
   * @param user the connection's verified claims
   * @param scope the scope asked for
   * @param subscriptionToken the token sent with the subscribe frame, or null
   * @param workspace the workspace the connection joined, or null
   */
  record Request(UserClaims user, ScopeId scope, String subscriptionToken, String workspace) {}

  CompletionStage<Decision> authorize(Request request);
}
