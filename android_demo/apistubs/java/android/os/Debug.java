// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/os/Debug.java; documented at developer.android.com/reference/android/os/Debug (getNativeHeapAllocatedSize: API level 1). NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.os;

public final class Debug {
  private Debug() { throw new UnsupportedOperationException("stub"); }
  /** The number of bytes allocated in the native heap (malloc): where ExecuTorch keeps programs and packed weights. */
  public static long getNativeHeapAllocatedSize() { throw new UnsupportedOperationException("stub"); }
}
