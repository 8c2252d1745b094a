// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/widget/AdapterView.java; documented at developer.android.com/reference/android/widget/AdapterView. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.widget;

import android.content.Context;
import android.view.View;
import android.view.ViewGroup;

public abstract class AdapterView<T extends Adapter> extends ViewGroup {
  public AdapterView(Context context) { super(context); throw new UnsupportedOperationException("stub"); }
  public interface OnItemSelectedListener {
    void onItemSelected(AdapterView<?> parent, View view, int position, long id);
    void onNothingSelected(AdapterView<?> parent);
  }
  public void setOnItemSelectedListener(OnItemSelectedListener listener) { throw new UnsupportedOperationException("stub"); }
}
