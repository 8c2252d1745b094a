package org.rsnetedge.demo;

import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;
import android.content.IntentFilter;
import android.os.BatteryManager;
import android.os.Build;
import android.os.PowerManager;
import androidx.core.content.ContextCompat;
import org.rsnetedge.core.ResolutionController;

/**
 * The device events the policy reads, fed to the pure-Java {@link ResolutionController}: the sticky
 * {@code ACTION_BATTERY_CHANGED} broadcast (level, scale, plugged) and the {@code PowerManager}
 * thermal status listener (API 29+). {@code onChange} runs after each event (on the main thread).
 */
final class DeviceSignals {
  private final Context context;
  private final ResolutionController controller;
  private final Runnable onChange;
  private PowerManager.OnThermalStatusChangedListener thermalListener;
  private boolean batteryRegistered;

  private final BroadcastReceiver batteryReceiver =
      new BroadcastReceiver() {
        @Override
        public void onReceive(Context c, Intent intent) {
          onBatteryIntent(intent);
        }
      };

  DeviceSignals(Context context, ResolutionController controller, Runnable onChange) {
    this.context = context;
    this.controller = controller;
    this.onChange = onChange;
  }

  /** Register both; the current battery and thermal state are applied at once. */
  void start() {
    // Sticky broadcast: registerReceiver returns the current battery state at once.
    Intent sticky =
        ContextCompat.registerReceiver(
            context,
            batteryReceiver,
            new IntentFilter(Intent.ACTION_BATTERY_CHANGED),
            ContextCompat.RECEIVER_NOT_EXPORTED);
    batteryRegistered = true;
    if (sticky != null) onBatteryIntent(sticky);
    registerThermalListener();
  }

  void stop() {
    if (batteryRegistered) context.unregisterReceiver(batteryReceiver);
    batteryRegistered = false;
    if (thermalListener != null && Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
      context.getSystemService(PowerManager.class).removeThermalStatusListener(thermalListener);
    }
    thermalListener = null;
  }

  private void onBatteryIntent(Intent intent) {
    int level = intent.getIntExtra(BatteryManager.EXTRA_LEVEL, -1);
    int scale = intent.getIntExtra(BatteryManager.EXTRA_SCALE, 100);
    int plugged = intent.getIntExtra(BatteryManager.EXTRA_PLUGGED, 0);
    if (level < 0 || scale <= 0) return;
    // whole percent (Android's UI): never a value in (0, 1), refused by the policy as a fraction
    double pct = Math.floor(Math.max(0, Math.min(100, level * 100.0 / scale)));
    controller.onBattery(pct, plugged != 0);
    onChange.run();
  }

  private void registerThermalListener() {
    if (Build.VERSION.SDK_INT < Build.VERSION_CODES.Q) return; // thermal API is 29+
    PowerManager pm = context.getSystemService(PowerManager.class);
    if (pm == null) return;
    thermalListener =
        status -> {
          controller.onThermalStatus(clampThermal(status));
          onChange.run();
        };
    pm.addThermalStatusListener(ContextCompat.getMainExecutor(context), thermalListener);
    controller.onThermalStatus(clampThermal(pm.getCurrentThermalStatus()));
  }

  private static int clampThermal(int status) {
    return Math.max(0, Math.min(6, status));
  }
}
