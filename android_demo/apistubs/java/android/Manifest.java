// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/Manifest (generated from AndroidManifest.xml permissions).java; documented at developer.android.com/reference/android/Manifest. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android;

public final class Manifest {
  public static final class permission {
    public static final String CAMERA = "android.permission.CAMERA";
  }
}
