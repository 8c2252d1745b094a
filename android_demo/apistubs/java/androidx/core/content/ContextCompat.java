// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx.core:core (>= 1.9.0 for registerReceiver flags; via appcompat 1.7.0), core/core/src/main/java/androidx/core/content/ContextCompat.java; NOT checked against source here: long-stable API as documented at developer.android.com/reference/androidx/core/content/ContextCompat
// Only the members the app uses; every body throws.
package androidx.core.content;

import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;
import android.content.IntentFilter;
import java.util.concurrent.Executor;

public class ContextCompat {
  public static final int RECEIVER_NOT_EXPORTED = 0x4;
  public static int checkSelfPermission(Context context, String permission) { throw new UnsupportedOperationException("stub"); }
  public static Intent registerReceiver(Context context, BroadcastReceiver receiver, IntentFilter filter, int flags) { throw new UnsupportedOperationException("stub"); }
  public static Executor getMainExecutor(Context context) { throw new UnsupportedOperationException("stub"); }
}
