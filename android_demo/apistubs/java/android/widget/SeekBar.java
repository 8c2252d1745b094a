// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: Android SDK platform android-35 (android.jar), frameworks/base core/java/android/widget/SeekBar.java; documented at developer.android.com/reference/android/widget/SeekBar. NOT checked against source here (no SDK): long-stable API
// Only the members the app uses; every body throws.
package android.widget;

import android.content.Context;

public class SeekBar extends AbsSeekBar {
  public SeekBar(Context context) { super(context); throw new UnsupportedOperationException("stub"); }
  public interface OnSeekBarChangeListener {
    void onProgressChanged(SeekBar seekBar, int progress, boolean fromUser);
    void onStartTrackingTouch(SeekBar seekBar);
    void onStopTrackingTouch(SeekBar seekBar);
  }
  public void setOnSeekBarChangeListener(OnSeekBarChangeListener l) { throw new UnsupportedOperationException("stub"); }
}
