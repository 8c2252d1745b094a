// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/app/Activity.java; documented at developer.android.com/reference/android/app/Activity. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.app;

import android.os.Bundle;
import android.view.ContextThemeWrapper;
import android.view.View;

public class Activity extends ContextThemeWrapper {
  protected void onCreate(Bundle savedInstanceState) { throw new UnsupportedOperationException("stub"); }
  protected void onResume() { throw new UnsupportedOperationException("stub"); }
  protected void onPause() { throw new UnsupportedOperationException("stub"); }
  protected void onDestroy() { throw new UnsupportedOperationException("stub"); }
  public void setContentView(int layoutResID) { throw new UnsupportedOperationException("stub"); }
  public <T extends View> T findViewById(int id) { throw new UnsupportedOperationException("stub"); }
  public final void runOnUiThread(Runnable action) { throw new UnsupportedOperationException("stub"); }
}
