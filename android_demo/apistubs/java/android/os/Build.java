// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/os/Build.java; documented at developer.android.com/reference/android/os/Build. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.os;

public class Build {
  public static class VERSION {
    /** Not a compile-time constant on a device. */
    public static final int SDK_INT = Integer.getInteger("stub.sdk", 0);
  }
  public static class VERSION_CODES {
    public static final int Q = 29;
  }
}
