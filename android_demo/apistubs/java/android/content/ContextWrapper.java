// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/content/ContextWrapper.java; documented at developer.android.com/reference/android/content/ContextWrapper. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.content;

import java.io.File;
import android.content.res.AssetManager;

public class ContextWrapper extends Context {
  @Override public File getFilesDir() { throw new UnsupportedOperationException("stub"); }
  @Override public AssetManager getAssets() { throw new UnsupportedOperationException("stub"); }
  @Override public void unregisterReceiver(BroadcastReceiver receiver) { throw new UnsupportedOperationException("stub"); }
}
