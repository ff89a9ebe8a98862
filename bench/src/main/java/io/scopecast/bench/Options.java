package io.scopecast.bench;

import java.util.LinkedHashMap;
import java.util.Map;

/** {@code --name value} options (and {@code --flag} booleans) of a bench run. */
final class Options {
  private final Map<String, String> values = new LinkedHashMap<>();

  private Options() {}

  Options(String[] args, int from) {
    for (int i = from; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("--")) throw new IllegalArgumentException("unexpected argument " + a);
      String name = a.substring(2);
      if (i + 1 < args.length && !args[i + 1].startsWith("--")) values.put(name, args[++i]);
      else values.put(name, "true");
    }
  }

  String string(String name, String def) {
    return values.getOrDefault(name, def);
  }

  int integer(String name, int def) {
    return values.containsKey(name) ? Integer.parseInt(values.get(name)) : def;
  }

  double number(String name, double def) {
    return values.containsKey(name) ? Double.parseDouble(values.get(name)) : def;
  }

  boolean flag(String name) {
    return Boolean.parseBoolean(values.getOrDefault(name, "false"));
  }

  boolean has(String name) {
    return values.containsKey(name);
  }

  /** A copy with {@code name} set to {@code value}. */
  Options with(String name, String value) {
    Options copy = new Options();
    copy.values.putAll(values);
    copy.values.put(name, value);
    return copy;
  }

  /** A copy without {@code name}. */
  Options without(String name) {
    Options copy = new Options();
    copy.values.putAll(values);
    copy.values.remove(name);
    return copy;
  }

  Map<String, String> all() {
    return values;
  }
}
