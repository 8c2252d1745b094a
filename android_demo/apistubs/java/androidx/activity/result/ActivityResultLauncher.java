// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx.activity:activity:1.9.3, activity/activity/src/main/java/androidx/activity/result/ActivityResultLauncher.kt; NOT checked against source here: long-stable API as documented at developer.android.com/reference/androidx/activity/result/ActivityResultLauncher
// Only the members the app uses; every body throws.
package androidx.activity.result;

public abstract class ActivityResultLauncher<I> {
  public void launch(I input) { throw new UnsupportedOperationException("stub"); }
}
