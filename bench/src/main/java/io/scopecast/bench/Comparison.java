package io.scopecast.bench;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Scopecast's figures beside the other targets' from one {@code --targets} invocation (the runs
 * share a {@code comparison} id), and the ratio of Scopecast's figure to each other target's: for
 * deliveries and connections per second above 1 means Scopecast does better, for latency, memory
 * and CPU per connection below 1 does. Printed after the runs and written to the doc's
 * {@code comparison} table.
 */
final class Comparison {
  private Comparison() {}

  /** One compared figure: its name, its value in a run, and what is shown beside it (server CPU). */
  private record Figure(String name, String field, String beside, boolean ratio) {
    Double value(JsonNode r) {
      JsonNode v = r;
      for (String part : field.split("\\.")) v = v.path(part);
      return v.isNumber() ? v.asDouble() : null;
    }

    String show(JsonNode r) {
      Double v = value(r);
      if (v == null) return "";
      String s = Math.abs(v) >= 100 || v == Math.rint(v) ? String.format("%,.0f", v) : String.format("%.2f", v);
      if (beside != null && r.path(beside).isNumber()) s += String.format(" (%.0f %% CPU)", r.path(beside).asDouble());
      return s;
    }
  }

  private static final List<Figure> FIGURES = List.of(
      new Figure("deliveries per server-CPU-second", "delivered_per_server_cpu_s", "server_cpu_pct", true),
      new Figure("deliveries per second", "delivered_per_s", null, true),
      new Figure("p50 publish→receive (ms)", "latency_ms.p50", null, true),
      new Figure("p99 publish→receive (ms)", "latency_ms.p99", null, true),
      new Figure("generator CPU (% of a core)", "generator_cpu_pct", null, false),
      new Figure("lost", "lost", null, false),
      new Figure("RSS per idle connection (KB)", "rss_kb_per_connection", null, true),
      new Figure("connections per second (warm)", "connections_per_s", "connect_server_cpu_pct", true),
      new Figure("server CPU per connection (ms)", "connect_server_cpu_ms_per_connection", null, true),
      new Figure("generator CPU while connecting (% of a core)", "connect_generator_cpu_pct", null, false));

  /** The table as rows of cells: run, figure, one value per target, then Scopecast ÷ each other target. */
  static List<List<String>> rows(String label, Map<Target, JsonNode> byTarget, List<Target> columns) {
    List<List<String>> rows = new ArrayList<>();
    JsonNode sc = byTarget.get(Target.SCOPECAST);
    for (Figure f : FIGURES) {
      if (byTarget.values().stream().noneMatch(r -> f.value(r) != null)) continue;
      List<String> row = new ArrayList<>(List.of(label, f.name()));
      for (Target t : columns) row.add(byTarget.containsKey(t) ? f.show(byTarget.get(t)) : "");
      for (Target t : columns) {
        if (t == Target.SCOPECAST) continue;
        Double a = sc == null ? null : f.value(sc);
        Double b = byTarget.containsKey(t) ? f.value(byTarget.get(t)) : null;
        row.add(f.ratio() && a != null && b != null && b != 0 ? String.format("×%.2f", a / b) : "");
      }
      rows.add(row);
    }
    return rows;
  }

  static List<String> header(List<Target> columns) {
    List<String> h = new ArrayList<>(List.of("run", "figure"));
    for (Target t : columns) h.add(t.title);
    for (Target t : columns) if (t != Target.SCOPECAST) h.add("Scopecast ÷ " + t.title);
    return h;
  }

  /** The comparison of this invocation's runs, aligned for a terminal. */
  static String console(List<Result> results) {
    Map<Target, JsonNode> byTarget = new EnumMap<>(Target.class);
    for (Result r : results) byTarget.put(Target.of(r.json.path("target").asText()), r.json);
    List<Target> columns = new ArrayList<>(byTarget.keySet());
    String label = results.isEmpty() ? "" : results.get(0).json.path("label").asText();
    List<List<String>> table = new ArrayList<>();
    table.add(header(columns));
    table.addAll(rows(label, byTarget, columns));
    int[] width = new int[table.get(0).size()];
    for (List<String> row : table) for (int i = 0; i < row.size(); i++) width[i] = Math.max(width[i], row.get(i).length());
    StringBuilder b = new StringBuilder("== comparison: " + label + " (ratios: Scopecast's figure ÷ the other's; loss: "
        + "Scopecast checks offsets, the others count per room)\n");
    for (List<String> row : table) {
      b.append(' ');
      for (int i = 1; i < row.size(); i++) b.append(' ').append(String.format("%-" + width[i] + "s", row.get(i))).append(' ');
      b.append('\n');
    }
    return b.toString();
  }

  /** The doc's table: the newest comparison of every label, Scopecast, Socket.IO and ws side by side. */
  static String markdown(List<JsonNode> runs) {
    Map<String, String> newestComparison = new LinkedHashMap<>();
    for (JsonNode r : runs) if (r.has("comparison")) newestComparison.put(r.path("label").asText(), r.path("comparison").asText());
    List<Target> columns = List.of(Target.values());
    Function<List<String>, String> line = cells -> "| " + String.join(" | ", cells) + " |\n";
    StringBuilder t = new StringBuilder(line.apply(header(columns)));
    t.append("|---".repeat(header(columns).size())).append("|\n");
    for (Map.Entry<String, String> e : newestComparison.entrySet()) {
      Map<Target, JsonNode> byTarget = new EnumMap<>(Target.class);
      for (JsonNode r : runs) {
        if (r.path("label").asText().equals(e.getKey()) && r.path("comparison").asText().equals(e.getValue())) {
          byTarget.put(Target.of(r.path("target").asText()), r);
        }
      }
      for (List<String> row : rows(e.getKey(), byTarget, columns)) t.append(line.apply(row));
    }
    return t.toString();
  }
}
