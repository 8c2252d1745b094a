// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/widget/TextView.java; documented at developer.android.com/reference/android/widget/TextView. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.widget;

import android.content.Context;
import android.view.View;

public class TextView extends View {
  public TextView(Context context) { super(context); throw new UnsupportedOperationException("stub"); }
  public final void setText(CharSequence text) { throw new UnsupportedOperationException("stub"); }
}
