package org.rsnetedge.core;

import java.util.Arrays;

/** Latency statistics over the last {@code window} samples: last, median, p90 (in ms). */
public final class RunningStats {
  private final double[] ring;
  private int next;
  private int size;
  private long total;
  private double last = Double.NaN;

  public RunningStats(int window) {
    if (window <= 0) throw new IllegalArgumentException("window must be positive");
    ring = new double[window];
  }

  public synchronized void add(double ms) {
    if (Double.isNaN(ms) || ms < 0) throw new IllegalArgumentException("latency must be >= 0");
    ring[next] = ms;
    next = (next + 1) % ring.length;
    if (size < ring.length) size++;
    total++;
    last = ms;
  }

  /** Samples ever added (not just those in the window). */
  public synchronized long count() {
    return total;
  }

  /** Last sample, NaN when empty. */
  public synchronized double last() {
    return last;
  }

  /** Median of the window (mean of the two middle ones for an even count), NaN when empty. */
  public synchronized double median() {
    return percentile(50);
  }

  /** 90th percentile of the window, NaN when empty. */
  public synchronized double p90() {
    return percentile(90);
  }

  /** Percentile with linear interpolation between order statistics (numpy's default). */
  public synchronized double percentile(double q) {
    if (q < 0 || q > 100) throw new IllegalArgumentException("q must be in 0..100");
    if (size == 0) return Double.NaN;
    double[] v = Arrays.copyOf(ring, size);
    Arrays.sort(v);
    double pos = (size - 1) * q / 100.0;
    int lo = (int) Math.floor(pos);
    int hi = Math.min(lo + 1, size - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
  }

  public synchronized void clear() {
    next = 0;
    size = 0;
    total = 0;
    last = Double.NaN;
  }
}
