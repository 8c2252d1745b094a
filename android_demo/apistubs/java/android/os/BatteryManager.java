// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/os/BatteryManager.java; documented at developer.android.com/reference/android/os/BatteryManager. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.os;

public class BatteryManager {
  public static final String EXTRA_LEVEL = "level";
  public static final String EXTRA_SCALE = "scale";
  public static final String EXTRA_PLUGGED = "plugged";
}
