package org.rsnetedge.core;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.Map;

/**
 * Picks the entry point to run: the Java twin of {@code rsnet_edge.policy.Selector}.
 *
 * <p>Rules, in this fixed order (full text: rsnet_edge/policy.py docstring):
 *
 * <ol>
 *   <li>battery level with hysteresis (the battery stage keeps its own history);
 *   <li>charging lifts to {@code charging_resolution} ("max" = highest), never lowers;
 *   <li>thermal cap (smallest cap at or below the state's severity), snapped down to a served
 *       resolution;
 *   <li>latency budget: highest served resolution, not above steps 1-3, whose measured {@code
 *       profile[r][latency_metric]} fits; unmeasured ones never fit; none fits: the lowest.
 * </ol>
 *
 * <p>Not thread-safe; callers serialise (the Android app calls it from one thread).
 */
public final class Selector {

  /** The result of one decision: the resolution to run and the battery stage's own result. */
  public static final class Decision {
    public final int resolution;
    public final int batteryResolution;

    Decision(int resolution, int batteryResolution) {
      this.resolution = resolution;
      this.batteryResolution = batteryResolution;
    }
  }

  private final Policy policy;
  private Integer batteryResolution;
  private Integer current;
  private int switchCount;

  public Selector(Policy policy) {
    if (policy == null) throw new NullPointerException("Selector needs a Policy");
    this.policy = policy;
  }

  public Policy policy() {
    return policy;
  }

  public int select(double batteryPct, boolean charging, String thermal) {
    return select(batteryPct, charging, thermal, null, null);
  }

  /**
   * One stateful decision. A rejected input throws {@link PolicyException} and leaves the state
   * (hysteresis history, current resolution, switch count) untouched.
   *
   * @param latencyBudgetMs null = no budget; otherwise {@code profile} is required
   * @param profile resolution key ("224" or "forward_224") to a record holding the policy's
   *     latency metric (e.g. {"p90_ms": 12.5}); other record fields are ignored
   */
  public int select(
      double batteryPct,
      boolean charging,
      String thermal,
      Double latencyBudgetMs,
      Map<String, ? extends Map<String, ?>> profile) {
    Decision d = decide(policy, batteryPct, charging, thermal, latencyBudgetMs, profile,
        batteryResolution);
    batteryResolution = d.batteryResolution;
    if (current != null && current != d.resolution) switchCount++;
    current = d.resolution;
    return d.resolution;
  }

  /** The last selected resolution, or null before the first call. */
  public Integer current() {
    return current;
  }

  /** The battery stage's last result (its hysteresis history), or null. */
  public Integer batteryResolution() {
    return batteryResolution;
  }

  public int switchCount() {
    return switchCount;
  }

  public void reset() {
    batteryResolution = null;
    current = null;
    switchCount = 0;
  }

  // -------------------------------------------------------------------------- pure rules
  /** Stateless selection: what a fresh Selector returns on its first call. */
  public static int selectResolution(
      Policy policy,
      double batteryPct,
      boolean charging,
      String thermal,
      Double latencyBudgetMs,
      Map<String, ? extends Map<String, ?>> profile) {
    return decide(policy, batteryPct, charging, thermal, latencyBudgetMs, profile, null).resolution;
  }

  /** Rule 1: battery level with hysteresis around {@code previous} (null = no history). */
  public static int batteryStage(Policy policy, double batteryPct, Integer previous) {
    double[] mins = policy.levelMin;
    int[] res = policy.levelRes;
    int plain = 0;
    while (!(batteryPct >= mins[plain])) plain++;
    int cur = previous == null ? -1 : Policy.indexOf(res, previous);
    if (cur < 0) return res[plain];
    double h = policy.hysteresisPct;
    if (plain > cur) { // battery fell below min_cur
      return batteryPct < mins[cur] - h ? res[plain] : res[cur];
    }
    for (int j = 0; j < cur; j++) { // highest level above cur first
      if (batteryPct >= mins[j] + h) return res[j];
    }
    return res[cur];
  }

  /** All four rules, pure. Feed {@link Decision#batteryResolution} back for hysteresis. */
  public static Decision decide(
      Policy policy,
      double batteryPct,
      boolean charging,
      String thermal,
      Double latencyBudgetMs,
      Map<String, ? extends Map<String, ?>> profile,
      Integer previousBatteryResolution) {
    checkInputs(batteryPct, thermal, latencyBudgetMs, profile, policy.latencyMetric);
    int b = batteryStage(policy, batteryPct, previousBatteryResolution);
    int r = b;
    if (charging && policy.chargingResolution != null) { // 2. charging lift
      int lift =
          policy.chargingResolution instanceof Integer
              ? (Integer) policy.chargingResolution
              : policy.maxResolution();
      r = Math.max(r, lift);
    }
    Integer cap = policy.thermalCap(thermal); // 3. thermal cap
    if (cap != null && r > cap) r = snapDown(policy, cap);
    if (latencyBudgetMs != null) { // 4. latency budget
      int pick = policy.minResolution();
      for (int q : policy.resolutions) {
        if (q > r) continue;
        Double ms = profileMs(profile, q, policy.latencyMetric);
        if (ms != null && ms <= latencyBudgetMs) {
          pick = q;
          break;
        }
      }
      r = pick;
    }
    return new Decision(r, b);
  }

  private static int snapDown(Policy policy, int limit) {
    for (int r : policy.resolutions) if (r <= limit) return r;
    return policy.minResolution();
  }

  private static void checkInputs(
      double batteryPct,
      String thermal,
      Double latencyBudgetMs,
      Map<String, ? extends Map<String, ?>> profile,
      String metric) {
    checkBattery(batteryPct);
    Policy.thermalIndex(thermal);
    if (latencyBudgetMs != null) {
      if (latencyBudgetMs.isNaN() || latencyBudgetMs.isInfinite() || latencyBudgetMs <= 0) {
        throw new PolicyException(
            "latency_budget_ms must be a positive number, got " + latencyBudgetMs);
      }
      if (profile == null) {
        throw new PolicyException(
            "latency_budget_ms needs a measured profile (resolution -> {metric: ms})");
      }
    }
    if (profile != null) {
      for (Map.Entry<String, ? extends Map<String, ?>> e : profile.entrySet()) {
        if (e.getValue() == null) {
          throw new PolicyException(
              "profile['" + e.getKey() + "'] must be an object like {\"p90_ms\": ms}");
        }
        Object v = e.getValue().get(metric);
        if (v == null) continue;
        boolean ok = v instanceof Number;
        if (ok) {
          double d = ((Number) v).doubleValue();
          ok = !Double.isNaN(d) && !Double.isInfinite(d) && d >= 0;
        }
        if (!ok) {
          throw new PolicyException(
              "profile['" + e.getKey() + "']['" + metric + "'] must be a non-negative number, got "
                  + v);
        }
      }
    }
  }

  /**
   * The battery input rule (rsnet_edge/policy.py docstring): a percentage 0..100; a value strictly
   * between 0 and 1 is refused as a likely fraction (iOS reports 0..1), so pass 0 or 1.
   */
  public static void checkBattery(double batteryPct) {
    if (Double.isNaN(batteryPct) || batteryPct < 0 || batteryPct > 100) {
      throw new PolicyException("battery_pct must be a number in 0..100, got " + batteryPct);
    }
    if (batteryPct > 0 && batteryPct < 1) {
      throw new PolicyException(
          "battery_pct " + plain(batteryPct) + " looks like a fraction (iOS reports 0..1): pass a"
              + " percentage 0..100, e.g. " + plain(round6(batteryPct * 100)));
    }
  }

  /** Like Python's repr of a float in 0..100: shortest digits, no exponent. */
  private static String plain(double v) {
    return BigDecimal.valueOf(v).stripTrailingZeros().toPlainString();
  }

  /** Six significant digits, like Python's {@code %g}. */
  private static double round6(double v) {
    return new BigDecimal(v).round(new MathContext(6)).doubleValue();
  }

  /** Measured latency; keys "224" then "forward_224" (first present wins); null = unmeasured. */
  private static Double profileMs(
      Map<String, ? extends Map<String, ?>> profile, int resolution, String metric) {
    String[] keys = {Integer.toString(resolution), Manifest.entryName(resolution)};
    for (String k : keys) {
      if (profile.containsKey(k)) {
        Object v = profile.get(k).get(metric);
        return v == null ? null : ((Number) v).doubleValue();
      }
    }
    return null;
  }
}
