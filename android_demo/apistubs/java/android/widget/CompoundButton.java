// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/widget/CompoundButton.java; documented at developer.android.com/reference/android/widget/CompoundButton. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.widget;

import android.content.Context;

public abstract class CompoundButton extends Button {
  public CompoundButton(Context context) { super(context); throw new UnsupportedOperationException("stub"); }
  public interface OnCheckedChangeListener {
    void onCheckedChanged(CompoundButton buttonView, boolean isChecked);
  }
  public boolean isChecked() { throw new UnsupportedOperationException("stub"); }
  public void setOnCheckedChangeListener(OnCheckedChangeListener listener) { throw new UnsupportedOperationException("stub"); }
}
