package io.scopecast.actors.auth;

import java.util.Set;

/** What a verified connection token says: the user ({@code sub}) and the workspaces it grants. */
public record UserClaims(String user, Set<String> workspaces) {
  public UserClaims {
    workspaces = Set.copyOf(workspaces);
  }

  public boolean grantsWorkspace(String workspace) {
    return workspaces.contains(workspace);
  }
}
