package org.rsnetedge.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The resolution selector policy, as data: the Java twin of {@code rsnet_edge.policy.Policy}.
 *
 * <p>Same JSON layout, same validation rules, same {@link #defaultPolicy(int[])} rule. See the
 * Python module docstring (rsnet_edge/policy.py) for the decision rules that {@link Selector}
 * implements; both are checked against tests/data/policy_vectors.json.
 */
public final class Policy {
  public static final int VERSION = 1;

  /** Android PowerManager.THERMAL_STATUS_* names, coolest first (index == Android constant). */
  public static final List<String> THERMAL_STATES =
      Collections.unmodifiableList(
          Arrays.asList("none", "light", "moderate", "severe", "critical", "emergency", "shutdown"));

  public static final int DEFAULT_TOP_BATTERY_PCT = 60;
  public static final double DEFAULT_HYSTERESIS_PCT = 3.0;
  public static final String DEFAULT_LATENCY_METRIC = "p90_ms";
  /** {@link #chargingResolution} value meaning "the highest served resolution". */
  public static final String CHARGING_MAX = "max";

  private static final List<String> KEYS =
      Arrays.asList(
          "version",
          "resolutions",
          "battery_levels",
          "hysteresis_pct",
          "charging_resolution",
          "thermal_caps",
          "latency_metric");

  final int version;
  final int[] resolutions; // strictly decreasing
  final double[] levelMin; // battery_levels[i][0], strictly decreasing, last == 0
  final int[] levelRes; // battery_levels[i][1], strictly decreasing
  final double hysteresisPct;
  /** null = charging is ignored; CHARGING_MAX; or an Integer resolution. */
  final Object chargingResolution;
  final Integer[] thermalCaps; // indexed like THERMAL_STATES, null = no cap
  final String latencyMetric;

  private Policy(
      int version,
      int[] resolutions,
      double[] levelMin,
      int[] levelRes,
      double hysteresisPct,
      Object chargingResolution,
      Integer[] thermalCaps,
      String latencyMetric) {
    this.version = version;
    this.resolutions = resolutions;
    this.levelMin = levelMin;
    this.levelRes = levelRes;
    this.hysteresisPct = hysteresisPct;
    this.chargingResolution = chargingResolution;
    this.thermalCaps = thermalCaps;
    this.latencyMetric = latencyMetric;
  }

  // ------------------------------------------------------------------------------ parsing
  public static Policy fromJson(String json) {
    String refused = Json.shapeError(json, "policy");
    if (refused != null) throw new PolicyException(refused);
    JsonElement e;
    try {
      e = JsonParser.parseString(json);
    } catch (RuntimeException ex) {
      throw new PolicyException("policy is not valid JSON: " + ex.getMessage());
    }
    return fromJson(e);
  }

  /** Build and validate; throws {@link PolicyException} with one clear line. */
  public static Policy fromJson(JsonElement element) {
    need(element != null && element.isJsonObject(), "policy must be a JSON object");
    JsonObject d = element.getAsJsonObject();
    TreeSet<String> unknown = new TreeSet<String>();
    for (String k : d.keySet()) {
      if (!KEYS.contains(k)) unknown.add(k);
    }
    need(unknown.isEmpty(), "policy has unknown key(s) " + unknown + " (known: " + KEYS + ")");
    need(d.has("resolutions"), "policy is missing 'resolutions'");
    need(d.has("battery_levels"), "policy is missing 'battery_levels'");

    int version = VERSION;
    if (d.has("version")) {
      JsonElement v = d.get("version");
      need(Json.isInt(v) && v.getAsInt() >= 1,
          "policy version must be a positive integer, got " + Json.repr(v));
      version = v.getAsInt();
    }
    need(version <= VERSION,
        "policy version " + version + " is newer than this library understands (" + VERSION + ")");

    JsonElement rsEl = d.get("resolutions");
    need(rsEl.isJsonArray() && rsEl.getAsJsonArray().size() > 0,
        "policy resolutions must be a non-empty list of positive integers");
    JsonArray rsArr = rsEl.getAsJsonArray();
    int[] rs = new int[rsArr.size()];
    for (int i = 0; i < rs.length; i++) {
      JsonElement x = rsArr.get(i);
      need(Json.isInt(x) && x.getAsInt() > 0,
          "policy resolutions must be a non-empty list of positive integers");
      rs[i] = x.getAsInt();
    }
    for (int i = 1; i < rs.length; i++) {
      need(rs[i - 1] > rs[i],
          "policy resolutions must be strictly decreasing (highest first), got "
              + Arrays.toString(rs));
    }

    JsonElement lvEl = d.get("battery_levels");
    need(lvEl.isJsonArray() && lvEl.getAsJsonArray().size() > 0,
        "policy battery_levels must be a non-empty list of [min_pct, resolution]");
    JsonArray lv = lvEl.getAsJsonArray();
    double[] mins = new double[lv.size()];
    int[] lres = new int[lv.size()];
    for (int i = 0; i < mins.length; i++) {
      JsonElement x = lv.get(i);
      boolean ok =
          x.isJsonArray()
              && x.getAsJsonArray().size() == 2
              && Json.isNum(x.getAsJsonArray().get(0))
              && Json.isInt(x.getAsJsonArray().get(1));
      need(ok, "policy battery_levels item " + Json.repr(x) + " must be [min_pct, resolution]");
      mins[i] = x.getAsJsonArray().get(0).getAsDouble();
      lres[i] = x.getAsJsonArray().get(1).getAsInt();
      need(mins[i] >= 0 && mins[i] <= 100,
          "policy battery_levels min_pct " + fmt(mins[i]) + " must be in 0..100");
      need(indexOf(rs, lres[i]) >= 0,
          "policy battery_levels resolution " + lres[i] + " is not one of " + Arrays.toString(rs));
    }
    for (int i = 1; i < mins.length; i++) {
      need(mins[i - 1] > mins[i],
          "policy battery_levels min_pct must be strictly decreasing, got " + Arrays.toString(mins));
    }
    need(mins[mins.length - 1] == 0,
        "policy battery_levels must end with min_pct 0 (got "
            + fmt(mins[mins.length - 1])
            + ") so every battery level maps to a resolution");
    for (int i = 1; i < lres.length; i++) {
      need(lres[i - 1] > lres[i],
          "policy battery_levels resolutions must be strictly decreasing, got "
              + Arrays.toString(lres));
    }

    double h = DEFAULT_HYSTERESIS_PCT;
    if (d.has("hysteresis_pct")) {
      JsonElement he = d.get("hysteresis_pct");
      need(Json.isNum(he) && he.getAsDouble() >= 0 && he.getAsDouble() < 50,
          "policy hysteresis_pct must be a number in [0, 50), got " + Json.repr(he));
      h = he.getAsDouble();
    }

    Object charging = CHARGING_MAX;
    if (d.has("charging_resolution")) {
      JsonElement c = d.get("charging_resolution");
      if (Json.isNull(c)) {
        charging = null;
      } else if (Json.isString(c) && CHARGING_MAX.equals(c.getAsString())) {
        charging = CHARGING_MAX;
      } else if (Json.isInt(c) && indexOf(rs, c.getAsInt()) >= 0) {
        charging = Integer.valueOf(c.getAsInt());
      } else {
        throw new PolicyException(
            "policy charging_resolution must be \"max\", null or one of "
                + Arrays.toString(rs)
                + ", got "
                + Json.repr(c));
      }
    }

    Integer[] caps = new Integer[THERMAL_STATES.size()];
    if (d.has("thermal_caps")) {
      JsonElement ce = d.get("thermal_caps");
      need(ce.isJsonObject(), "policy thermal_caps must be an object");
      for (Map.Entry<String, JsonElement> kv : ce.getAsJsonObject().entrySet()) {
        int idx = THERMAL_STATES.indexOf(kv.getKey());
        need(idx >= 0,
            "policy thermal_caps has unknown thermal state '"
                + kv.getKey()
                + "' (known: "
                + THERMAL_STATES
                + ")");
        JsonElement v = kv.getValue();
        if (Json.isNull(v)) continue;
        need(Json.isInt(v) && v.getAsInt() > 0,
            "policy thermal_caps['"
                + kv.getKey()
                + "'] must be null or a positive integer, got "
                + Json.repr(v));
        caps[idx] = v.getAsInt();
      }
    }

    String metric = DEFAULT_LATENCY_METRIC;
    if (d.has("latency_metric")) {
      JsonElement m = d.get("latency_metric");
      need(Json.isString(m) && !m.getAsString().isEmpty(),
          "policy latency_metric must be a non-empty string");
      metric = m.getAsString();
    }
    return new Policy(version, rs, mins, lres, h, charging, caps, metric);
  }

  /** The default policy for any resolution list (rule: rsnet_edge/policy.py docstring). */
  public static Policy defaultPolicy(int[] resolutions) {
    TreeSet<Integer> set = new TreeSet<Integer>(Collections.reverseOrder());
    if (resolutions != null) {
      for (int r : resolutions) set.add(r);
    }
    need(!set.isEmpty() && set.last() > 0,
        "default_policy needs a non-empty list of positive resolutions");
    int s = set.size();
    int[] rs = new int[s];
    int k = 0;
    for (Integer r : set) rs[k++] = r;
    double[] mins = new double[s];
    for (int i = 0; i < s; i++) {
      mins[i] = (s == 1) ? 0 : (DEFAULT_TOP_BATTERY_PCT * (s - 1 - i)) / (s - 1);
    }
    Integer[] caps = new Integer[THERMAL_STATES.size()];
    caps[2] = rs[(s - 1) / 2]; // moderate: the middle
    caps[3] = rs[Math.max(s - 2, 0)]; // severe: second lowest
    caps[4] = rs[s - 1]; // critical
    caps[5] = rs[s - 1]; // emergency
    caps[6] = rs[s - 1]; // shutdown
    return new Policy(
        VERSION, rs, mins, rs.clone(), DEFAULT_HYSTERESIS_PCT, CHARGING_MAX, caps,
        DEFAULT_LATENCY_METRIC);
  }

  /**
   * The policy an artifact runs with: its manifest's policy object, or the default policy for its
   * resolutions when that object is missing or empty. Refuses a policy naming other resolutions.
   */
  public static Policy forManifest(JsonElement policy, int[] resolutions) {
    if (Json.isNull(policy) || (policy.isJsonObject() && policy.getAsJsonObject().size() == 0)) {
      return defaultPolicy(resolutions);
    }
    Policy p = fromJson(policy);
    int[] a = p.resolutions.clone();
    int[] b = resolutions.clone();
    Arrays.sort(a);
    Arrays.sort(b);
    need(Arrays.equals(a, b),
        "policy resolutions "
            + Arrays.toString(p.resolutions)
            + " differ from the artifact's "
            + Arrays.toString(resolutions));
    return p;
  }

  // ------------------------------------------------------------------------------ output
  public JsonObject toJson() {
    JsonObject o = new JsonObject();
    o.addProperty("version", version);
    JsonArray rs = new JsonArray();
    for (int r : resolutions) rs.add(r);
    o.add("resolutions", rs);
    JsonArray lv = new JsonArray();
    for (int i = 0; i < levelMin.length; i++) {
      JsonArray pair = new JsonArray();
      pair.add(numberOf(levelMin[i]));
      pair.add(levelRes[i]);
      lv.add(pair);
    }
    o.add("battery_levels", lv);
    o.add("hysteresis_pct", numberOf(hysteresisPct));
    if (chargingResolution == null) {
      o.add("charging_resolution", JsonNull.INSTANCE);
    } else if (chargingResolution instanceof Integer) {
      o.addProperty("charging_resolution", (Integer) chargingResolution);
    } else {
      o.addProperty("charging_resolution", CHARGING_MAX);
    }
    JsonObject caps = new JsonObject();
    for (int i = 0; i < THERMAL_STATES.size(); i++) {
      if (thermalCaps[i] == null) caps.add(THERMAL_STATES.get(i), JsonNull.INSTANCE);
      else caps.addProperty(THERMAL_STATES.get(i), thermalCaps[i]);
    }
    o.add("thermal_caps", caps);
    o.addProperty("latency_metric", latencyMetric);
    return o;
  }

  // ----------------------------------------------------------------------------- queries
  public int[] resolutions() {
    return resolutions.clone();
  }

  public int maxResolution() {
    return resolutions[0];
  }

  public int minResolution() {
    return resolutions[resolutions.length - 1];
  }

  public double hysteresisPct() {
    return hysteresisPct;
  }

  public String latencyMetric() {
    return latencyMetric;
  }

  /** [min_pct, resolution] pairs, highest first. */
  public List<double[]> batteryLevels() {
    List<double[]> out = new ArrayList<double[]>();
    for (int i = 0; i < levelMin.length; i++) out.add(new double[] {levelMin[i], levelRes[i]});
    return out;
  }

  /** Index of a thermal state name, or a PolicyException for an unknown one. */
  public static int thermalIndex(String thermal) {
    int idx = thermal == null ? -1 : THERMAL_STATES.indexOf(thermal);
    if (idx < 0) {
      throw new PolicyException(
          "unknown thermal state " + (thermal == null ? "None" : "'" + thermal + "'")
              + " (known: " + THERMAL_STATES + ")");
    }
    return idx;
  }

  /** Effective cap: the smallest non-null cap at or below this state's severity (null = none). */
  public Integer thermalCap(String thermal) {
    int idx = thermalIndex(thermal);
    Integer cap = null;
    for (int i = 0; i <= idx; i++) {
      if (thermalCaps[i] != null && (cap == null || thermalCaps[i] < cap)) cap = thermalCaps[i];
    }
    return cap;
  }

  @Override
  public String toString() {
    return toJson().toString();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Policy && toJson().equals(((Policy) o).toJson());
  }

  @Override
  public int hashCode() {
    return toJson().hashCode();
  }

  // ----------------------------------------------------------------------------- helpers
  static int indexOf(int[] a, int v) {
    for (int i = 0; i < a.length; i++) if (a[i] == v) return i;
    return -1;
  }

  private static JsonPrimitive numberOf(double v) {
    if (v == Math.rint(v) && Math.abs(v) < 1e9) return new JsonPrimitive((long) v);
    return new JsonPrimitive(v);
  }

  private static String fmt(double v) {
    return v == Math.rint(v) && Math.abs(v) < 1e9 ? Long.toString((long) v) : Double.toString(v);
  }

  private static void need(boolean cond, String msg) {
    if (!cond) throw new PolicyException(msg);
  }
}
