// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/os/PowerManager (thermal API: level 29).java; documented at developer.android.com/reference/android/os/PowerManager. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.os;

import java.util.concurrent.Executor;

public final class PowerManager {
  private PowerManager() { throw new UnsupportedOperationException("stub"); }
  public interface OnThermalStatusChangedListener {
    void onThermalStatusChanged(int status);
  }
  public int getCurrentThermalStatus() { throw new UnsupportedOperationException("stub"); }
  public void addThermalStatusListener(Executor executor, OnThermalStatusChangedListener listener) { throw new UnsupportedOperationException("stub"); }
  public void removeThermalStatusListener(OnThermalStatusChangedListener listener) { throw new UnsupportedOperationException("stub"); }
}
