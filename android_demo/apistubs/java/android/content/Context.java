// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/content/Context.java; documented at developer.android.com/reference/android/content/Context. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.content;

import java.io.File;
import android.content.res.AssetManager;

public abstract class Context {
  public abstract File getFilesDir();
  public abstract AssetManager getAssets();
  public final String getString(int resId) { throw new UnsupportedOperationException("stub"); }
  public final <T> T getSystemService(Class<T> serviceClass) { throw new UnsupportedOperationException("stub"); }
  public abstract void unregisterReceiver(BroadcastReceiver receiver);
}
