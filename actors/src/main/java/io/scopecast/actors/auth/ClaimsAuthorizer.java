package io.scopecast.actors.auth;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * The rules of §9, in order: {@code user:X} only if X = sub; {@code workspace:X} if X is in the
 * token's workspaces; otherwise a valid subscription token for that scope; otherwise the
 * authorization hook when one is configured; otherwise forbidden.
 */
public final class ClaimsAuthorizer implements ScopeAuthorizer {
  private static final CompletionStage<Decision> ALLOW = CompletableFuture.completedFuture(Decision.ALLOW);
  private static final CompletionStage<Decision> FORBIDDEN = CompletableFuture.completedFuture(Decision.FORBIDDEN);

  private final TokenVerifier tokens;
  private final ScopeAuthorizer hook;

  /** @param hook consulted when no claim or subscription token decides; null for none */
  public ClaimsAuthorizer(TokenVerifier tokens, ScopeAuthorizer hook) {
    this.tokens = tokens;
    this.hook = hook;
  }

  @Override
  public CompletionStage<Decision> authorize(Request r) {
    String type = r.scope().type();
    String id = r.scope().id();
    if (type.equals("user")) {
      return id.equals(r.user().user()) ? ALLOW : FORBIDDEN;
    }
    if (type.equals("workspace") && r.user().grantsWorkspace(id)) return ALLOW;
    if (r.subscriptionToken() != null && tokens.grantsScope(r.subscriptionToken(), r.user().user(), r.scope())) {
      return ALLOW;
    }
    if (hook != null) return hook.authorize(r);
    return FORBIDDEN;
  }
}
