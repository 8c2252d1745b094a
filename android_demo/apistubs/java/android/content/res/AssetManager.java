// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/content/res/AssetManager.java; documented at developer.android.com/reference/android/content/res/AssetManager. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.content.res;

import java.io.IOException;
import java.io.InputStream;

public final class AssetManager {
  private AssetManager() { throw new UnsupportedOperationException("stub"); }
  public InputStream open(String fileName) throws IOException { throw new UnsupportedOperationException("stub"); }
  public String[] list(String path) throws IOException { throw new UnsupportedOperationException("stub"); }
}
