// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/graphics/Bitmap.java; documented at developer.android.com/reference/android/graphics/Bitmap. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.graphics;

public final class Bitmap {
  private Bitmap() { throw new UnsupportedOperationException("stub"); }
  public enum Config { ALPHA_8, RGB_565, ARGB_4444, ARGB_8888, RGBA_F16, HARDWARE, RGBA_1010102 }
  public int getWidth() { throw new UnsupportedOperationException("stub"); }
  public int getHeight() { throw new UnsupportedOperationException("stub"); }
  public void getPixels(int[] pixels, int offset, int stride, int x, int y, int width, int height) { throw new UnsupportedOperationException("stub"); }
  public Bitmap copy(Config config, boolean isMutable) { throw new UnsupportedOperationException("stub"); }
}
