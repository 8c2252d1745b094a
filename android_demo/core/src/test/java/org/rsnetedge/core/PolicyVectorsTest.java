package org.rsnetedge.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.File;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * Runs every step of tests/data/policy_vectors.json -- the same file tests/test_policy.py reads --
 * through the Java Selector. All mismatches are collected and reported together.
 */
public class PolicyVectorsTest {

  static Policy casePolicy(JsonObject c) {
    if (c.has("default_for")) {
      JsonArray a = c.getAsJsonArray("default_for");
      int[] rs = new int[a.size()];
      for (int i = 0; i < rs.length; i++) rs[i] = a.get(i).getAsInt();
      return Policy.defaultPolicy(rs);
    }
    return Policy.fromJson(c.get("policy"));
  }

  /** JSON profile object -> map of records (numbers become Double, null stays null). */
  static Map<String, Map<String, Object>> profile(JsonElement e) {
    if (e == null || e.isJsonNull()) return null;
    Map<String, Map<String, Object>> out = new LinkedHashMap<String, Map<String, Object>>();
    for (Map.Entry<String, JsonElement> kv : e.getAsJsonObject().entrySet()) {
      if (!kv.getValue().isJsonObject()) {
        out.put(kv.getKey(), null);
        continue;
      }
      Map<String, Object> rec = new LinkedHashMap<String, Object>();
      for (Map.Entry<String, JsonElement> f : kv.getValue().getAsJsonObject().entrySet()) {
        JsonElement v = f.getValue();
        if (v.isJsonNull()) rec.put(f.getKey(), null);
        else if (v.isJsonPrimitive() && v.getAsJsonPrimitive().isNumber())
          rec.put(f.getKey(), v.getAsDouble());
        else rec.put(f.getKey(), v.toString());
      }
      out.put(kv.getKey(), rec);
    }
    return out;
  }

  static List<String> runCase(JsonObject c) {
    List<String> problems = new ArrayList<String>();
    String name = c.get("name").getAsString();
    Policy policy = casePolicy(c);
    Map<String, Map<String, Object>> prof = profile(c.get("profile"));
    boolean fresh = c.has("fresh") && c.get("fresh").getAsBoolean();
    Selector sel = new Selector(policy);
    JsonArray steps = c.getAsJsonArray("steps");
    for (int i = 0; i < steps.size(); i++) {
      if (fresh) sel = new Selector(policy);
      JsonObject s = steps.get(i).getAsJsonObject();
      double battery = s.get("battery").getAsDouble();
      boolean charging = s.has("charging") && s.get("charging").getAsBoolean();
      String thermal = s.has("thermal") ? s.get("thermal").getAsString() : "none";
      Double budget = s.has("latency_budget_ms") ? s.get("latency_budget_ms").getAsDouble() : null;
      Map<String, Map<String, Object>> p = s.has("latency_budget_ms") ? prof : null;
      String where = name + " step " + i + " " + s;
      if (s.has("expect_error") && s.get("expect_error").getAsBoolean()) {
        Integer b0 = sel.batteryResolution();
        Integer c0 = sel.current();
        int n0 = sel.switchCount();
        try {
          sel.select(battery, charging, thermal, budget, p);
          problems.add(where + ": expected an error, got none");
        } catch (PolicyException expected) {
          boolean same = eq(b0, sel.batteryResolution()) && eq(c0, sel.current())
              && n0 == sel.switchCount();
          if (!same) problems.add(where + ": a rejected call changed the selector's state");
          if (s.has("error_contains")
              && !expected.getMessage().contains(s.get("error_contains").getAsString())) {
            problems.add(where + ": expected an error containing '"
                + s.get("error_contains").getAsString() + "', got '" + expected.getMessage() + "'");
          }
        }
        continue;
      }
      int got = sel.select(battery, charging, thermal, budget, p);
      int want = s.get("expect").getAsInt();
      if (got != want) problems.add(where + ": expected " + want + ", got " + got);
      if (fresh && Selector.selectResolution(policy, battery, charging, thermal, budget, p) != got) {
        problems.add(where + ": stateless helper disagrees with a fresh Selector");
      }
      if (s.has("expect_switches") && sel.switchCount() != s.get("expect_switches").getAsInt()) {
        problems.add(where + ": expected " + s.get("expect_switches").getAsInt()
            + " switches, got " + sel.switchCount());
      }
    }
    return problems;
  }

  private static boolean eq(Integer a, Integer b) {
    return a == null ? b == null : a.equals(b);
  }

  @Test
  public void everyVectorStepAgrees() {
    File f = TestData.vectors();
    JsonObject root = JsonParser.parseString(TestData.read(f)).getAsJsonObject();
    assertEquals("rsnet-edge-policy-vectors", root.get("format").getAsString());
    JsonArray cases = root.getAsJsonArray("cases");
    assertTrue("no cases in " + f, cases.size() > 0);
    List<String> problems = new ArrayList<String>();
    int steps = 0;
    for (JsonElement c : cases) {
      problems.addAll(runCase(c.getAsJsonObject()));
      steps += c.getAsJsonObject().getAsJsonArray("steps").size();
    }
    System.out.println("PolicyVectorsTest: " + cases.size() + " cases, " + steps + " steps from " + f);
    if (!problems.isEmpty()) {
      StringBuilder sb = new StringBuilder("policy vectors disagree with the Java Selector (" + f + "):");
      for (String p : problems) sb.append("\n  ").append(p);
      fail(sb.toString());
    }
  }
}
