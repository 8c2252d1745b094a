// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/widget/ArrayAdapter.java; documented at developer.android.com/reference/android/widget/ArrayAdapter. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.widget;

import android.content.Context;
import java.util.List;

public class ArrayAdapter<T> extends BaseAdapter {
  public ArrayAdapter(Context context, int resource, List<T> objects) { throw new UnsupportedOperationException("stub"); }
  public void setDropDownViewResource(int resource) { throw new UnsupportedOperationException("stub"); }
}
