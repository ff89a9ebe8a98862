package io.scopecast.bench;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;

/** Turns the JSON lines of the runs into the chart and the table of docs/benchmarks.md. */
final class Report {
  static String start(String section) {
    return "<!-- bench:" + section + ":start -->";
  }

  static String end(String section) {
    return "<!-- bench:" + section + ":end -->";
  }

  private Report() {}

  static List<JsonNode> read(Path in) throws IOException {
    List<JsonNode> runs = new ArrayList<>();
    for (String line : Files.readAllLines(in, StandardCharsets.UTF_8)) {
      if (!line.isBlank()) runs.add(Result.JSON.readTree(line));
    }
    return runs;
  }

  /** Latency percentiles (p50, p90, p99, p99.9) vs publish rate, from the newest fanout run per rate. */
  static void chart(Path in, Path png) throws IOException {
    Map<String, TreeMap<Double, JsonNode>> byRedis = new LinkedHashMap<>();
    for (JsonNode r : read(in)) {
      if (!r.path("workload").asText().equals("fanout") || !isScopecast(r)) continue;
      byRedis.computeIfAbsent(r.path("redis").asBoolean() ? "with Redis" : "memory", k -> new TreeMap<>())
          .put(r.path("publish_rate_target").asDouble(), r);
    }
    XYChart chart = new XYChartBuilder().width(900).height(560)
        .title("Scopecast fanout: publish → receive latency, 1000 subscribers (1 scope)")
        .xAxisTitle("publishes per second (× 1000 deliveries)").yAxisTitle("latency (ms)").build();
    chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
    chart.getStyler().setYAxisLogarithmic(true);
    chart.getStyler().setMarkerSize(6);
    for (Map.Entry<String, TreeMap<Double, JsonNode>> e : byRedis.entrySet()) {
      List<Double> x = new ArrayList<>(e.getValue().keySet());
      for (String p : new String[] {"p50", "p90", "p99", "p999"}) {
        List<Double> y = new ArrayList<>();
        for (JsonNode r : e.getValue().values()) y.add(Math.max(0.01, r.path("latency_ms").path(p).asDouble()));
        chart.addSeries(p + " (" + e.getKey() + ")", x, y);
      }
    }
    if (png.getParent() != null) Files.createDirectories(png.getParent());
    BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    System.out.println("wrote " + png);
  }

  /** Runs from before there were other targets have no {@code target}: they are Scopecast's. */
  static boolean isScopecast(JsonNode r) {
    return r.path("target").asText(Target.SCOPECAST.id).equals(Target.SCOPECAST.id);
  }

  /**
   * Rewrites the table between the markers of {@code section} in {@code doc}: Scopecast's newest
   * run of every label, or (section {@code comparison}) the newest comparison of every label.
   */
  static void table(Path in, Path doc, String section) throws IOException {
    if (section.equals("comparison")) {
      replace(doc, section, Comparison.markdown(read(in)));
      System.out.println("updated the comparison table in " + doc);
      return;
    }
    Map<String, JsonNode> newest = new LinkedHashMap<>();
    for (JsonNode r : read(in)) if (isScopecast(r)) newest.put(r.path("label").asText(), r);
    StringBuilder t = new StringBuilder();
    t.append("| run | delivered/s | per server-CPU-second | p50 / p99 / p99.9 / max (ms) | lost | other figures |\n");
    t.append("|---|---|---|---|---|---|\n");
    for (JsonNode r : newest.values()) {
      JsonNode l = r.path("latency_ms");
      String lat = l.isMissingNode() ? "" : l.path("p50").asText() + " / " + l.path("p99").asText() + " / "
          + l.path("p999").asText() + " / " + l.path("max").asText();
      String other = switch (r.path("workload").asText()) {
        case "idle" -> String.format("%d connections: %.1f KB RSS and %.1f KB live heap per connection, %.0f connections/s",
            r.path("connections").asInt(), r.path("rss_kb_per_connection").asDouble(),
            r.path("live_heap_kb_per_connection").asDouble(), r.path("connections_per_s").asDouble());
        case "resume-storm" -> String.format("%d clients caught up in %.2f s (%s), %d gaps, %d resyncs",
            r.path("subscribers").asInt(), r.path("catch_up_s").asDouble(), r.path("caught_up").asText(),
            r.path("gaps_after_resume").asLong(), r.path("resyncs").asLong());
        default -> String.format("publish rate %.0f/s, server CPU %.1f s, generator CPU %.1f s%s, peak RSS %.0f MB%s",
            r.path("publish_rate").asDouble(), r.path("server_cpu_s").asDouble(), r.path("generator_cpu_s").asDouble(),
            r.path("redis").asBoolean() ? String.format(", Redis CPU %.1f s", r.path("redis_cpu_s").asDouble()) : "",
            r.path("server_peak_rss_mb").asDouble(),
            r.path("not_subscribed").asInt() > 0 ? String.format("; %d of %d clients were refused the scope in their handshake (unavailable) and are not counted",
                r.path("not_subscribed").asInt(), r.path("not_subscribed").asInt() + r.path("subscribers").asInt()) : "");
      };
      t.append("| ").append(r.path("label").asText()).append(r.path("redis").asBoolean() && !r.path("label").asText().contains("redis") ? " (Redis)" : "")
          .append(" | ").append(fmt(r, "delivered_per_s"))
          .append(" | ").append(fmt(r, "delivered_per_server_cpu_s"))
          .append(" | ").append(lat)
          .append(" | ").append(r.has("lost") ? r.path("lost").asText() : (r.has("gaps_after_resume") ? r.path("gaps_after_resume").asText() : ""))
          .append(" | ").append(other).append(" |\n");
    }
    replace(doc, section, t.toString());
    System.out.println("updated the table in " + doc + " from " + newest.size() + " runs");
  }

  private static void replace(Path doc, String section, String table) throws IOException {
    String text = Files.readString(doc, StandardCharsets.UTF_8);
    int a = text.indexOf(start(section));
    int b = text.indexOf(end(section));
    if (a < 0 || b < a) throw new IllegalStateException(doc + " has no " + start(section) + " … " + end(section) + " section");
    Files.writeString(doc, text.substring(0, a + start(section).length()) + "\n" + table + text.substring(b), StandardCharsets.UTF_8);
  }

  private static String fmt(JsonNode r, String field) {
    return r.has(field) ? String.format("%,.0f", r.path(field).asDouble()) : "";
  }
}
