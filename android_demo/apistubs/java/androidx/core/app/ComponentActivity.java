// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx.core:core (via appcompat 1.7.0), core/core/src/main/java/androidx/core/app/ComponentActivity.java; NOT checked against source here: long-stable API as documented at developer.android.com/reference/androidx/core/app/ComponentActivity
// Only the members the app uses; every body throws.
package androidx.core.app;

import android.app.Activity;
import androidx.lifecycle.LifecycleOwner;

public class ComponentActivity extends Activity implements LifecycleOwner {
}
