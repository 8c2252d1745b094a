// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/widget/Spinner.java; documented at developer.android.com/reference/android/widget/Spinner. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.widget;

import android.content.Context;

public class Spinner extends AbsSpinner {
  public Spinner(Context context) { super(context); throw new UnsupportedOperationException("stub"); }
  @Override public void setAdapter(SpinnerAdapter adapter) { throw new UnsupportedOperationException("stub"); }
}
