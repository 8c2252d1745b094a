// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx.activity:activity:1.9.3, activity/activity/src/main/java/androidx/activity/ComponentActivity.kt; NOT checked against source here: long-stable API as documented at developer.android.com/reference/androidx/activity/ComponentActivity
// Only the members the app uses; every body throws.
package androidx.activity;

import androidx.activity.result.ActivityResultCallback;
import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContract;

public class ComponentActivity extends androidx.core.app.ComponentActivity {
  public final <I, O> ActivityResultLauncher<I> registerForActivityResult(
      ActivityResultContract<I, O> contract, ActivityResultCallback<O> callback) { throw new UnsupportedOperationException("stub"); }
}
