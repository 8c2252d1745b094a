// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/view/View.java; documented at developer.android.com/reference/android/view/View. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.view;

import android.content.Context;

public class View {
  public static final int VISIBLE = 0x00000000;
  public static final int GONE = 0x00000008;
  public View(Context context) { throw new UnsupportedOperationException("stub"); }
  public void setVisibility(int visibility) { throw new UnsupportedOperationException("stub"); }
  public void setEnabled(boolean enabled) { throw new UnsupportedOperationException("stub"); }
}
