// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx.activity:activity:1.9.3, activity/activity/src/main/java/androidx/activity/result/ActivityResultCallback.kt (fun interface); NOT checked against source here: long-stable API as documented at developer.android.com/reference/androidx/activity/result/ActivityResultCallback
// Only the members the app uses; every body throws.
package androidx.activity.result;

public interface ActivityResultCallback<O> {
  void onActivityResult(O result);
}
