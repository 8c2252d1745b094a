// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/os/Handler.java; documented at developer.android.com/reference/android/os/Handler. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.os;

public class Handler {
  public Handler(Looper looper) { throw new UnsupportedOperationException("stub"); }
  public final boolean post(Runnable r) { throw new UnsupportedOperationException("stub"); }
  public final boolean postDelayed(Runnable r, long delayMillis) { throw new UnsupportedOperationException("stub"); }
  public final void removeCallbacks(Runnable r) { throw new UnsupportedOperationException("stub"); }
}
