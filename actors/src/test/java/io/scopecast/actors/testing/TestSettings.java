package io.scopecast.actors.testing;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.scopecast.actors.settings.ScopecastSettings;
import java.util.HashMap;
import java.util.Map;

/** Settings for tests: the reference defaults with a few keys changed. */
public final class TestSettings {
  public static final String SECRET = "test-secret-for-scopecast-tests";
  public static final String API_KEY = "test-api-key";

  private TestSettings() {}

  /** @param overrides pairs of key, value, e.g. "scopecast.history.size", 3 */
  public static ScopecastSettings with(Object... overrides) {
    return ScopecastSettings.fromConfig(config(overrides), "test-node");
  }

  public static Config config(Object... overrides) {
    Map<String, Object> m = new HashMap<>();
    m.put("scopecast.auth.jwt-secret", SECRET);
    m.put("scopecast.auth.api-key", API_KEY);
    for (int i = 0; i < overrides.length; i += 2) m.put((String) overrides[i], overrides[i + 1]);
    return ConfigFactory.parseMap(m).withFallback(ConfigFactory.defaultReference()).resolve();
  }
}
