package org.rsnetedge.core;

import java.util.ArrayList;
import java.util.List;

/** Softmax + top-k over classifier logits. */
public final class TopK {
  private TopK() {}

  /** One prediction: class index, name and softmax probability. */
  public static final class Prediction {
    public final int index;
    public final String label;
    public final float probability;

    Prediction(int index, String label, float probability) {
      this.index = index;
      this.label = label;
      this.probability = probability;
    }

    @Override
    public String toString() {
      return String.format(java.util.Locale.US, "%s %.1f%%", label, probability * 100f);
    }
  }

  /** The {@code k} most likely classes, most likely first (ties: lower index first). */
  public static List<Prediction> top(float[] logits, List<String> names, int k) {
    if (logits == null || logits.length == 0) throw new IllegalArgumentException("no logits");
    if (names != null && names.size() != logits.length) {
      throw new IllegalArgumentException(
          "model returned " + logits.length + " logits but the manifest has " + names.size()
              + " class names");
    }
    float max = Float.NEGATIVE_INFINITY;
    for (float v : logits) max = Math.max(max, v);
    double sum = 0;
    for (float v : logits) sum += Math.exp(v - max);
    int n = Math.min(k, logits.length);
    boolean[] taken = new boolean[logits.length];
    List<Prediction> out = new ArrayList<Prediction>(n);
    for (int j = 0; j < n; j++) {
      int best = -1;
      for (int i = 0; i < logits.length; i++) {
        if (!taken[i] && (best < 0 || logits[i] > logits[best])) best = i;
      }
      taken[best] = true;
      float p = (float) (Math.exp(logits[best] - max) / sum);
      out.add(new Prediction(best, names == null ? Integer.toString(best) : names.get(best), p));
    }
    return out;
  }
}
