// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/util/Log.java; documented at developer.android.com/reference/android/util/Log. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.util;

public final class Log {
  private Log() { throw new UnsupportedOperationException("stub"); }
  public static int e(String tag, String msg, Throwable tr) { throw new UnsupportedOperationException("stub"); }
  public static int w(String tag, String msg, Throwable tr) { throw new UnsupportedOperationException("stub"); }
}
