// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx.camera:camera-view:1.4.1, camera/camera-view/src/main/java/androidx/camera/view/PreviewView.java; NOT checked against source here: long-stable API as documented at developer.android.com/reference/androidx/camera/view/PreviewView
// Only the members the app uses; every body throws.
package androidx.camera.view;

import android.content.Context;
import android.widget.FrameLayout;
import androidx.camera.core.Preview;

public final class PreviewView extends FrameLayout {
  public PreviewView(Context context) { super(context); throw new UnsupportedOperationException("stub"); }
  public Preview.SurfaceProvider getSurfaceProvider() { throw new UnsupportedOperationException("stub"); }
}
