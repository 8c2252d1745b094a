package org.rsnetedge.demo;

import java.util.Locale;
import org.rsnetedge.core.ResidentPrograms;
import org.rsnetedge.core.ResolutionController;

/**
 * The status lines of the screen: policy inputs, latency, and the memory the app holds (which
 * programs are loaded, their size, the last program load and the native heap). Formatting only.
 */
final class StatusText {
  private StatusText() {}

  /** Latency figures of the current resolution plus the frame count and where frames come from. */
  static final class Latency {
    final double lastMs;
    final double medianMs;
    final long count;
    final String source;

    Latency(double lastMs, double medianMs, long count, String source) {
      this.lastMs = lastMs;
      this.medianMs = medianMs;
      this.count = count;
      this.source = source;
    }
  }

  static String status(ResolutionController c, boolean thermalReported, Latency f,
      ResidentPrograms.Snapshot mem, long nativeHeapBytes) {
    int res = c.resolution();
    Double battery = c.effectiveBattery();
    StringBuilder sb = new StringBuilder();
    sb.append(String.format(Locale.US, "battery   %s%s%n",
        battery == null ? "?" : String.format(Locale.US, "%.0f %%", battery),
        c.isSimulated() ? " (simulated)" : ""));
    sb.append(String.format(Locale.US, "charging  %s%n", c.charging() ? "yes" : "no"));
    sb.append(String.format(Locale.US, "thermal   %s%s%n", c.thermal(),
        thermalReported ? "" : " (API < 29: not reported)"));
    sb.append(String.format(Locale.US, "latency   last %s, median %s (at %d px)%n",
        ms(f.lastMs), ms(f.medianMs), res));
    sb.append(String.format(Locale.US, "switches  %d%n", c.switchCount()));
    sb.append(String.format(Locale.US, "policy    %d px%n", c.policyResolution()));
    sb.append(String.format(Locale.US, "frames    %d  from %s%n", f.count, f.source));
    if (mem != null) sb.append(memory(mem));
    sb.append(String.format(Locale.US, "native    %s allocated (native heap)%n", mb(nativeHeapBytes)));
    return sb.toString();
  }

  /** "memory" lines: lean or every entry resident, which programs are loaded, the last load. */
  static String memory(ResidentPrograms.Snapshot m) {
    StringBuilder sb = new StringBuilder();
    if (m.programs == 1) {
      sb.append(String.format(Locale.US, "memory    one program with every entry: %s%n", mb(m.residentBytes)));
    } else {
      String mode = m.mode == ResidentPrograms.Mode.ONE ? "lean (one program resident)" : "every entry resident";
      sb.append(String.format(Locale.US, "memory    %s: %d of %d programs loaded, %s%n",
          mode, m.resident, m.programs, mb(m.residentBytes)));
      sb.append(String.format(Locale.US, "          serving %s%n", m.residentEntries));
    }
    if (m.loads > 0) {
      sb.append(String.format(Locale.US, "loads     %d, last %.1f ms%s%n", m.loads, m.lastLoadMs,
          m.lastUnpacked ? " (unpacked first)" : ""));
    }
    return sb.toString();
  }

  static String ms(double v) {
    return Double.isNaN(v) ? "–" : String.format(Locale.US, "%.1f ms", v);
  }

  static String mb(long bytes) {
    return bytes < 0 ? "?" : String.format(Locale.US, "%.1f MB", bytes / 1e6);
  }
}
