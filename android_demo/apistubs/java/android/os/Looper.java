// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/os/Looper.java; documented at developer.android.com/reference/android/os/Looper. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.os;

public final class Looper {
  private Looper() { throw new UnsupportedOperationException("stub"); }
  public static Looper getMainLooper() { throw new UnsupportedOperationException("stub"); }
}
