// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/widget/FrameLayout.java; documented at developer.android.com/reference/android/widget/FrameLayout. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.widget;

import android.content.Context;
import android.view.ViewGroup;

public class FrameLayout extends ViewGroup {
  public FrameLayout(Context context) { super(context); throw new UnsupportedOperationException("stub"); }
}
