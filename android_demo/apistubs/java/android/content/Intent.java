// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/content/Intent.java; documented at developer.android.com/reference/android/content/Intent. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.content;

public class Intent {
  public static final String ACTION_BATTERY_CHANGED = "android.intent.action.BATTERY_CHANGED";
  public int getIntExtra(String name, int defaultValue) { throw new UnsupportedOperationException("stub"); }
}
