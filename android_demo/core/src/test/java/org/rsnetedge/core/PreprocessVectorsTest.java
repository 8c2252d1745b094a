package org.rsnetedge.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.File;
import java.util.Locale;
import org.junit.Test;

/**
 * tests/data/preprocess_vectors.json (written by tests/data/make_preprocess_vectors.py from
 * rsnet_edge.preprocess.eval_view; also checked by tests/test_android_core.py): the Java
 * preprocessing of the same pixels must be within 1/255 of Python's on the 0-1 scale, per element.
 */
public class PreprocessVectorsTest {
  static File vectors() {
    String p = System.getProperty("rsnet.preprocess_vectors");
    return p != null && !p.isEmpty() ? new File(p) : TestData.file("preprocess_vectors.json");
  }

  @Test
  public void javaMatchesPythonWithin1Over255() {
    File f = vectors();
    JsonObject d = JsonParser.parseString(TestData.read(f)).getAsJsonObject();
    float[] mean = floats(d.getAsJsonArray("mean"));
    float[] std = floats(d.getAsJsonArray("std"));
    double tol = d.get("tolerance").getAsDouble();
    JsonObject images = d.getAsJsonObject("images");
    int n = 0;
    double worst = 0;
    for (JsonElement ce : d.getAsJsonArray("cases")) {
      JsonObject c = ce.getAsJsonObject();
      String name = c.get("image").getAsString();
      JsonObject im = images.getAsJsonObject(name);
      int w = im.get("width").getAsInt();
      int h = im.get("height").getAsInt();
      JsonArray px = im.getAsJsonArray("pixels");
      assertEquals(name, 3 * w * h, px.size());
      int[] argb = new int[w * h];
      for (int i = 0; i < argb.length; i++) {
        argb[i] = 0xFF000000 | (px.get(3 * i).getAsInt() << 16) | (px.get(3 * i + 1).getAsInt() << 8)
            | px.get(3 * i + 2).getAsInt();
      }
      int r = c.get("resolution").getAsInt();
      double crop = c.get("crop_pct").getAsDouble();
      Manifest.InputSpec spec =
          new Manifest.InputSpec(mean, std, crop, "NCHW", "float32", "RGB", 255.0, "bilinear");
      float[] got = Preprocess.toTensor(argb, w, h, r, spec);
      float[] want = floats(c.getAsJsonArray("expected"));
      assertEquals(name + " @" + r, want.length, got.length);
      int plane = r * r;
      for (int i = 0; i < got.length; i++) {
        double diff = Math.abs(got[i] - want[i]) * std[i / plane];
        worst = Math.max(worst, diff);
        assertTrue(String.format(Locale.US, "%s: %s @%d crop_pct %s: element %d differs by %.5f on "
                + "the 0-1 scale (> %.5f)", f, name, r, crop, i, diff, tol), diff <= tol + 1e-6);
      }
      n++;
    }
    System.out.println(String.format(Locale.US,
        "PreprocessVectorsTest: %d cases from %s, max |diff| %.6f on the 0-1 scale", n, f, worst));
  }

  private static float[] floats(JsonArray a) {
    float[] out = new float[a.size()];
    for (int i = 0; i < out.length; i++) out[i] = a.get(i).getAsFloat();
    return out;
  }
}
