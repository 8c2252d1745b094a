// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx.fragment:fragment (via appcompat 1.7.0), fragment/fragment/src/main/java/androidx/fragment/app/FragmentActivity.java; NOT checked against source here: long-stable API as documented at developer.android.com/reference/androidx/fragment/app/FragmentActivity
// Only the members the app uses; every body throws.
package androidx.fragment.app;

public class FragmentActivity extends androidx.activity.ComponentActivity {
}
