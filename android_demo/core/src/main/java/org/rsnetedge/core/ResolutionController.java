package org.rsnetedge.core;

import java.util.Arrays;

/**
 * Everything the app decides, without Android: device conditions in, the entry point to run out.
 *
 * <p>The Android layer only feeds events (battery broadcast, thermal listener, the simulate slider,
 * the override spinner); every event re-applies the manifest's policy through one {@link Selector}
 * ({@link #apply()}), so the simulated battery goes down exactly the same path as the real one.
 * The model is never touched here: switching resolution only changes which method name
 * ({@code forward_<r>}) the caller executes next.
 *
 * <p>Thread-safe (all methods synchronized).
 */
public final class ResolutionController {
  private final Manifest manifest;
  private final Selector selector;

  private Double realBattery; // null until the first battery broadcast
  private boolean charging;
  private Double simulatedBattery; // null = use the real battery level
  private String thermal = "none";
  private Integer override; // null = automatic (policy)
  private int resolution;
  private int policyResolution;
  private int switchCount;
  private long applyCount;

  public ResolutionController(Manifest manifest) {
    this.manifest = manifest;
    this.selector = new Selector(manifest.policy);
    this.resolution = manifest.defaultResolution;
    this.policyResolution = manifest.defaultResolution;
  }

  // ------------------------------------------------------------------------ events (inputs)
  /** Real battery level (0..100) and charging state, e.g. from ACTION_BATTERY_CHANGED. */
  public synchronized int onBattery(double levelPct, boolean isCharging) {
    checkPct(levelPct);
    realBattery = levelPct;
    charging = isCharging;
    return apply();
  }

  /** Simulated battery level (0..100), or null to go back to the real level. */
  public synchronized int onSimulatedBattery(Double levelPct) {
    if (levelPct != null) checkPct(levelPct);
    simulatedBattery = levelPct;
    return apply();
  }

  /** Thermal state name (Policy.THERMAL_STATES), e.g. from PowerManager's listener. */
  public synchronized int onThermal(String state) {
    Policy.thermalIndex(state);
    thermal = state;
    return apply();
  }

  /** Thermal state from Android's PowerManager.THERMAL_STATUS_* constant (0..6). */
  public synchronized int onThermalStatus(int androidStatus) {
    return onThermal(thermalName(androidStatus));
  }

  /** Force a served resolution, or null for automatic selection. */
  public synchronized int onOverride(Integer res) {
    if (res != null) manifest.entryFor(res); // throws for a resolution the artifact lacks
    override = res;
    return apply();
  }

  // --------------------------------------------------------------------------- the rule
  /**
   * Re-apply the policy to the current conditions. Before any battery level is known the
   * manifest's default resolution is used (unless overridden).
   */
  public synchronized int apply() {
    Double battery = simulatedBattery != null ? simulatedBattery : realBattery;
    if (battery != null) {
      policyResolution = selector.select(battery, charging, thermal);
    }
    int next = override != null ? override : policyResolution;
    if (applyCount > 0 && next != resolution) switchCount++;
    resolution = next;
    applyCount++;
    return resolution;
  }

  // ------------------------------------------------------------------------------ outputs
  public synchronized int resolution() {
    return resolution;
  }

  /** The ExecuTorch method to execute now, e.g. "forward_160". */
  public synchronized String entryName() {
    return manifest.entryFor(resolution).entry;
  }

  /** What the policy alone would pick (ignores the override). */
  public synchronized int policyResolution() {
    return policyResolution;
  }

  /** How many times the resolution actually run has changed. */
  public synchronized int switchCount() {
    return switchCount;
  }

  /** The battery level the policy sees (simulated if set), or null before the first broadcast. */
  public synchronized Double effectiveBattery() {
    return simulatedBattery != null ? simulatedBattery : realBattery;
  }

  public synchronized Double realBattery() {
    return realBattery;
  }

  public synchronized boolean isSimulated() {
    return simulatedBattery != null;
  }

  public synchronized boolean charging() {
    return charging;
  }

  public synchronized String thermal() {
    return thermal;
  }

  public synchronized Integer override() {
    return override;
  }

  public Manifest manifest() {
    return manifest;
  }

  /** Android PowerManager.THERMAL_STATUS_* (0..6) to the policy's state name. */
  public static String thermalName(int androidStatus) {
    if (androidStatus < 0 || androidStatus >= Policy.THERMAL_STATES.size()) {
      throw new PolicyException(
          "unknown thermal status " + androidStatus + " (expected 0.."
              + (Policy.THERMAL_STATES.size() - 1) + ")");
    }
    return Policy.THERMAL_STATES.get(androidStatus);
  }

  private static void checkPct(double v) {
    Selector.checkBattery(v); // refused before it is stored, so later events still apply
  }

  @Override
  public synchronized String toString() {
    return "ResolutionController{resolution=" + resolution + ", battery=" + effectiveBattery()
        + ", charging=" + charging + ", thermal=" + thermal + ", override=" + override
        + ", switches=" + switchCount + ", resolutions=" + Arrays.toString(manifest.resolutions())
        + "}";
  }
}
