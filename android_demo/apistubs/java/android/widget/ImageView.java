// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/widget/ImageView.java; documented at developer.android.com/reference/android/widget/ImageView. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.widget;

import android.content.Context;
import android.graphics.Bitmap;
import android.view.View;

public class ImageView extends View {
  public ImageView(Context context) { super(context); throw new UnsupportedOperationException("stub"); }
  public void setImageBitmap(Bitmap bm) { throw new UnsupportedOperationException("stub"); }
}
