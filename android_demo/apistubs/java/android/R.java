// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/R (generated).java; documented at developer.android.com/reference/android/R. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android;

public final class R {
  public static final class layout {
    public static final int simple_spinner_item = 0x01090008;
    public static final int simple_spinner_dropdown_item = 0x01090009;
  }
}
