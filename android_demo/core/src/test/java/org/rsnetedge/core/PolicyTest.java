package org.rsnetedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.HashMap;
import java.util.Map;
import org.junit.Test;

public class PolicyTest {

  private static JsonObject good() {
    return Policy.defaultPolicy(new int[] {224, 192, 160, 128, 96}).toJson();
  }

  private static void rejects(JsonObject d, String msg) {
    try {
      Policy.fromJson(d);
      fail("accepted " + d);
    } catch (PolicyException e) {
      assertTrue(e.getMessage() + " should mention " + msg, e.getMessage().contains(msg));
      assertFalse(e.getMessage().contains("\n"));
    }
  }

  @Test
  public void defaultPolicyFiveResolutions() {
    Policy p = Policy.defaultPolicy(new int[] {96, 224, 160, 192, 128});
    assertArrayEquals(new int[] {224, 192, 160, 128, 96}, p.resolutions());
    double[] mins = new double[5];
    for (int i = 0; i < 5; i++) mins[i] = p.batteryLevels().get(i)[0];
    assertArrayEquals(new double[] {60, 45, 30, 15, 0}, mins, 0);
    assertNull(p.thermalCap("none"));
    assertNull(p.thermalCap("light"));
    assertEquals(Integer.valueOf(160), p.thermalCap("moderate"));
    assertEquals(Integer.valueOf(128), p.thermalCap("severe"));
    assertEquals(Integer.valueOf(96), p.thermalCap("critical"));
    assertEquals(Integer.valueOf(96), p.thermalCap("shutdown"));
    assertEquals(3.0, p.hysteresisPct(), 0);
    assertEquals("p90_ms", p.latencyMetric());
  }

  @Test
  public void defaultPolicyOtherLists() {
    int[][] lists = {{256, 128}, {160}, {224, 160, 96}, {224, 192, 160, 128}};
    double[][] want = {{60, 0}, {0}, {60, 30, 0}, {60, 40, 20, 0}};
    for (int k = 0; k < lists.length; k++) {
      Policy p = Policy.defaultPolicy(lists[k]);
      for (int i = 0; i < want[k].length; i++) {
        assertEquals(want[k][i], p.batteryLevels().get(i)[0], 0);
      }
      // JSON round trip gives an equal policy
      assertEquals(p, Policy.fromJson(p.toJson().toString()));
    }
    try {
      Policy.defaultPolicy(new int[0]);
      fail();
    } catch (PolicyException expected) {
      // ok
    }
  }

  @Test
  public void defaultPolicyTenResolutionsByHand() {
    // min_pct(i) = (60 * (9 - i)) / 9 floored: 53.3 -> 53, 46.7 -> 46, 26.7 -> 26, 6.7 -> 6
    Policy p = Policy.defaultPolicy(new int[] {320, 288, 256, 224, 192, 160, 128, 96, 64, 32});
    double[] mins = new double[10];
    for (int i = 0; i < 10; i++) mins[i] = p.batteryLevels().get(i)[0];
    assertArrayEquals(new double[] {60, 53, 46, 40, 33, 26, 20, 13, 6, 0}, mins, 0);
    Integer[] caps = new Integer[Policy.THERMAL_STATES.size()];
    for (int i = 0; i < caps.length; i++) caps[i] = p.thermalCap(Policy.THERMAL_STATES.get(i));
    assertArrayEquals(new Integer[] {null, null, 192, 64, 32, 32, 32}, caps);
  }

  @Test
  public void thermalCapIsTheSmallestSoFarNotTheLast() {
    Policy p = Policy.fromJson("{\"resolutions\": [224, 160, 96], \"battery_levels\": [[0, 224]],"
        + " \"thermal_caps\": {\"light\": 200, \"moderate\": 96, \"severe\": 160,"
        + " \"emergency\": 224}}");
    Integer[] caps = new Integer[Policy.THERMAL_STATES.size()];
    for (int i = 0; i < caps.length; i++) caps[i] = p.thermalCap(Policy.THERMAL_STATES.get(i));
    assertArrayEquals(new Integer[] {null, 200, 96, 96, 96, 96, 96}, caps);
  }

  @Test
  public void defaultPolicyJsonMatchesPythonLayout() {
    JsonObject o = Policy.defaultPolicy(new int[] {256, 128}).toJson();
    JsonObject want = JsonParser.parseString(
        "{\"version\":1,\"resolutions\":[256,128],\"battery_levels\":[[60,256],[0,128]],"
            + "\"hysteresis_pct\":3,\"charging_resolution\":\"max\",\"thermal_caps\":{\"none\":null,"
            + "\"light\":null,\"moderate\":256,\"severe\":256,\"critical\":128,\"emergency\":128,"
            + "\"shutdown\":128},\"latency_metric\":\"p90_ms\"}").getAsJsonObject();
    assertEquals(want, o);
  }

  @Test
  public void validationErrors() {
    JsonObject d;
    d = good(); d.remove("battery_levels"); rejects(d, "missing 'battery_levels'");
    d = good(); d.addProperty("bogus", 1); rejects(d, "unknown key");
    d = good(); d.addProperty("version", 2); rejects(d, "newer");
    d = good(); d.add("resolutions", arr("[96, 224]")); rejects(d, "strictly decreasing");
    d = good(); d.add("resolutions", arr("[]")); rejects(d, "non-empty");
    d = good(); d.add("resolutions", arr("[224.0, 96]")); rejects(d, "positive integers");
    d = good(); d.add("battery_levels", arr("[[60, 224], [10, 96]]")); rejects(d, "end with min_pct 0");
    d = good(); d.add("battery_levels", arr("[[60, 224], [70, 192], [0, 96]]"));
    rejects(d, "min_pct must be strictly");
    d = good(); d.add("battery_levels", arr("[[60, 96], [0, 224]]")); rejects(d, "resolutions must be strictly");
    d = good(); d.add("battery_levels", arr("[[60, 200], [0, 96]]")); rejects(d, "not one of");
    d = good(); d.add("battery_levels", arr("[[160, 224], [0, 96]]")); rejects(d, "0..100");
    d = good(); d.add("battery_levels", arr("[[60], [0, 96]]")); rejects(d, "must be [min_pct, resolution]");
    d = good(); d.addProperty("hysteresis_pct", -1); rejects(d, "hysteresis_pct");
    d = good(); d.addProperty("hysteresis_pct", "3"); rejects(d, "hysteresis_pct");
    d = good(); d.addProperty("charging_resolution", "min"); rejects(d, "charging_resolution");
    d = good(); d.addProperty("charging_resolution", 200); rejects(d, "charging_resolution");
    d = good(); d.getAsJsonObject("thermal_caps").addProperty("hot", 96); rejects(d, "unknown thermal state");
    d = good(); d.getAsJsonObject("thermal_caps").addProperty("severe", -5); rejects(d, "thermal_caps");
    d = good(); d.add("thermal_caps", arr("[1]")); rejects(d, "thermal_caps must be an object");
    d = good(); d.addProperty("latency_metric", ""); rejects(d, "latency_metric");
    try {
      Policy.fromJson("[1, 2]");
      fail();
    } catch (PolicyException e) {
      assertTrue(e.getMessage().contains("JSON object"));
    }
  }

  @Test
  public void selectorRejectsBadInputs() {
    Selector sel = new Selector(Policy.defaultPolicy(new int[] {224, 96}));
    Map<String, Map<String, Object>> prof = new HashMap<String, Map<String, Object>>();
    Object[][] bad = {
      {101.0, "none", null, null}, {-0.1, "none", null, null}, {Double.NaN, "none", null, null},
      {50.0, "hot", null, null}, {50.0, "MODERATE", null, null}, {50.0, null, null, null},
      {50.0, "none", 10.0, null}, {50.0, "none", 0.0, prof},
    };
    for (Object[] b : bad) {
      try {
        @SuppressWarnings("unchecked")
        Map<String, Map<String, Object>> p = (Map<String, Map<String, Object>>) b[3];
        sel.select((Double) b[0], false, (String) b[1], (Double) b[2], p);
        fail("accepted " + java.util.Arrays.toString(b));
      } catch (PolicyException expected) {
        assertNull(sel.current());
        assertNull(sel.batteryResolution());
      }
    }
    Map<String, Object> rec = new HashMap<String, Object>();
    rec.put("p90_ms", -1.0);
    prof.put("224", rec);
    try {
      sel.select(50, false, "none", 10.0, prof);
      fail();
    } catch (PolicyException e) {
      assertTrue(e.getMessage().contains("non-negative"));
    }
    rec.put("p90_ms", "fast");
    try {
      sel.select(50, false, "none", 10.0, prof);
      fail();
    } catch (PolicyException e) {
      assertTrue(e.getMessage().contains("non-negative"));
    }
  }

  @Test
  public void selectorSwitchCountAndReset() {
    Selector sel = new Selector(Policy.defaultPolicy(new int[] {224, 96}));
    assertEquals(224, sel.select(100, false, "none"));
    assertEquals(96, sel.select(10, false, "none"));
    assertEquals(1, sel.switchCount());
    sel.reset();
    assertNull(sel.current());
    assertEquals(0, sel.switchCount());
  }

  private static JsonArray arr(String s) {
    return JsonParser.parseString(s).getAsJsonArray();
  }
}
