// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx.activity:activity:1.9.3, activity/activity/src/main/java/androidx/activity/result/contract/ActivityResultContracts.kt; NOT checked against source here: long-stable API as documented at developer.android.com/reference/androidx/activity/result/contract/ActivityResultContracts
// Only the members the app uses; every body throws.
package androidx.activity.result.contract;

public final class ActivityResultContracts {
  private ActivityResultContracts() { throw new UnsupportedOperationException("stub"); }
  public static final class RequestPermission extends ActivityResultContract<String, Boolean> {
    public RequestPermission() { throw new UnsupportedOperationException("stub"); }
  }
}
