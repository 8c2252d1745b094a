// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx.appcompat:appcompat:1.7.0, appcompat/appcompat/src/main/java/androidx/appcompat/app/AppCompatActivity.java; NOT checked against source here: long-stable API as documented at developer.android.com/reference/androidx/appcompat/app/AppCompatActivity
// Only the members the app uses; every body throws.
package androidx.appcompat.app;

import android.view.View;
import androidx.fragment.app.FragmentActivity;

public class AppCompatActivity extends FragmentActivity {
  @Override public void setContentView(int layoutResID) { throw new UnsupportedOperationException("stub"); }
  @Override public <T extends View> T findViewById(int id) { throw new UnsupportedOperationException("stub"); }
}
