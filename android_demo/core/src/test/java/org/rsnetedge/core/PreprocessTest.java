package org.rsnetedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.fail;

import com.google.gson.JsonParser;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.Test;

public class PreprocessTest {

  private static int argb(int r, int g, int b) {
    return 0xFF000000 | (r << 16) | (g << 8) | b;
  }

  private static Manifest.InputSpec spec(String layout, String color) {
    String json = TestData.read(TestData.file("manifest_fixture.json"));
    com.google.gson.JsonObject d = JsonParser.parseString(json).getAsJsonObject();
    d.getAsJsonObject("input").addProperty("layout", layout);
    d.getAsJsonObject("input").addProperty("color", color);
    return Manifest.fromJson(d).input;
  }

  @Test
  public void resizeSizeUsesPythonRounding() {
    assertEquals(256, Preprocess.resizeSize(224, 0.875));
    assertEquals(219, Preprocess.resizeSize(192, 0.875));
    assertEquals(183, Preprocess.resizeSize(160, 0.875));
    assertEquals(146, Preprocess.resizeSize(128, 0.875));
    assertEquals(110, Preprocess.resizeSize(96, 0.875));
    assertEquals(12, Preprocess.resizeSize(5, 0.4)); // 12.5 -> 12 (half to even, like Python)
    assertEquals(14, Preprocess.resizeSize(3, 0.2222222222222222)); // 13.5 -> 14
    assertEquals(96, Preprocess.resizeSize(96, 1.0));
  }

  @Test
  public void centreCropPlan() {
    Preprocess.Plan p = Preprocess.plan(640, 480, 224, 0.875);
    assertEquals(341, p.resizedWidth); // int(256 * 640 / 480) = int(341.33)
    assertEquals(256, p.resizedHeight);
    assertEquals(58, p.cropLeft); // round(58.5) -> 58 (half to even)
    assertEquals(16, p.cropTop);
    Preprocess.Plan q = Preprocess.plan(480, 640, 96, 0.875);
    assertEquals(110, q.resizedWidth);
    assertEquals(146, q.resizedHeight); // int(110 * 640 / 480) = int(146.67)
    assertEquals(7, q.cropLeft);
    assertEquals(25, q.cropTop);
    Preprocess.Plan s = Preprocess.plan(300, 300, 160, 0.875);
    assertEquals(183, s.resizedWidth);
    assertEquals(183, s.resizedHeight);
    assertEquals(12, s.cropLeft); // round(11.5) -> 12 (half to even)
    assertEquals(12, s.cropTop);
  }

  @Test
  public void bilinearUpsampleUsesPixelCentres() {
    int[] src = {argb(0, 0, 0), argb(255, 255, 255)};
    int[] out = Preprocess.resizeBilinear(src, 2, 1, 4, 1);
    int[] red = new int[4];
    for (int i = 0; i < 4; i++) red[i] = (out[i] >> 16) & 0xFF;
    assertArrayEquals(new int[] {0, 64, 191, 255}, red);
    assertEquals(0xFF, (out[1] >>> 24) & 0xFF); // alpha preserved
  }

  @Test
  public void bilinearIdentityAndUniform() {
    Random rnd = new Random(1);
    int[] img = new int[7 * 5];
    for (int i = 0; i < img.length; i++) img[i] = argb(rnd.nextInt(256), rnd.nextInt(256), rnd.nextInt(256));
    assertArrayEquals(img, Preprocess.resizeBilinear(img, 7, 5, 7, 5));
    int[] flat = new int[8 * 8];
    Arrays.fill(flat, argb(10, 20, 30));
    int[] small = Preprocess.resizeBilinear(flat, 8, 8, 3, 5);
    for (int v : small) assertEquals(argb(10, 20, 30), v);
    // 4x4 -> 2x2 antialiased as PIL: scale 2 widens the triangle to 2 px each side of the centre.
    // Output 0 (centre 1.0) reads pixels 0,1,2 with weights 0.75,0.75,0.25 (/1.75):
    // (0*.75 + 10*.75 + 20*.25) / 1.75 = 7.14 -> 7; output 1 (centre 3.0) reads 1,2,3 with
    // 0.25,0.75,0.75: (10*.25 + 20*.75 + 30*.75) / 1.75 = 22.86 -> 23. (No antialias: 5 and 25.)
    int[] block = new int[16];
    for (int y = 0; y < 4; y++) for (int x = 0; x < 4; x++) block[y * 4 + x] = argb(x * 10, y * 10, 0);
    int[] half = Preprocess.resizeBilinear(block, 4, 4, 2, 2);
    assertEquals(argb(7, 7, 0), half[0]);
    assertEquals(argb(23, 23, 0), half[3]);
  }

  @Test
  public void centreCropPixels() {
    int[] img = new int[5 * 3];
    for (int i = 0; i < img.length; i++) img[i] = i;
    assertArrayEquals(new int[] {1, 2, 3, 6, 7, 8, 11, 12, 13}, Preprocess.centerCrop(img, 5, 3, 3));
    int[] img2 = new int[4 * 4];
    for (int i = 0; i < img2.length; i++) img2[i] = i;
    // (4-1)/2 = 1.5 -> 2 (half to even)
    assertArrayEquals(new int[] {10}, Preprocess.centerCrop(img2, 4, 4, 1));
  }

  @Test
  public void normalisationNchwNhwcBgr() {
    float[] mean = {0.5f, 0.5f, 0.5f};
    float[] std = {0.5f, 0.25f, 0.5f};
    int[] px = {argb(255, 0, 51), argb(0, 255, 255), argb(51, 51, 51), argb(255, 255, 255)};
    float[] nchw = Preprocess.normalize(px, 2, mean, std, 255.0, "RGB", "NCHW");
    assertEquals(12, nchw.length);
    assertEquals(1.0f, nchw[0], 1e-6); // R of pixel 0
    assertEquals(-1.0f, nchw[1], 1e-6); // R of pixel 1
    assertEquals(-2.0f, nchw[4], 1e-6); // G of pixel 0: (0 - 0.5) / 0.25
    assertEquals(2.0f, nchw[5], 1e-6); // G of pixel 1
    assertEquals(-0.6f, nchw[8], 1e-6); // B of pixel 0: (0.2 - 0.5) / 0.5
    float[] nhwc = Preprocess.normalize(px, 2, mean, std, 255.0, "RGB", "NHWC");
    assertEquals(1.0f, nhwc[0], 1e-6);
    assertEquals(-2.0f, nhwc[1], 1e-6);
    assertEquals(-0.6f, nhwc[2], 1e-6);
    float[] bgr = Preprocess.normalize(px, 2, mean, std, 255.0, "BGR", "NCHW");
    assertEquals(-0.6f, bgr[0], 1e-6);
    assertEquals(1.0f, bgr[8], 1e-6);
    try {
      Preprocess.normalize(px, 2, mean, std, 255.0, "YUV", "NCHW");
      fail();
    } catch (IllegalArgumentException expected) {
      // ok
    }
  }

  @Test
  public void fusedPipelineEqualsTheThreeSteps() {
    Random rnd = new Random(7);
    int w = 37;
    int h = 23;
    int[] img = new int[w * h];
    for (int i = 0; i < img.length; i++) img[i] = argb(rnd.nextInt(256), rnd.nextInt(256), rnd.nextInt(256));
    Manifest.InputSpec in = spec("NCHW", "RGB");
    for (int r : new int[] {16, 20, 14}) {
      Preprocess.Plan p = Preprocess.plan(w, h, r, in.cropPct);
      int[] resized = Preprocess.resizeBilinear(img, w, h, p.resizedWidth, p.resizedHeight);
      int[] crop = Preprocess.centerCrop(resized, p.resizedWidth, p.resizedHeight, r);
      float[] want = Preprocess.normalize(crop, r, in.mean, in.std, in.scale, in.color, in.layout);
      float[] got = Preprocess.toTensor(img, w, h, r, in);
      assertEquals(3 * r * r, got.length);
      assertArrayEquals(want, got, 0f);
    }
    assertArrayEquals(new long[] {1, 3, 16, 16}, Preprocess.shape(16, "NCHW"));
    assertArrayEquals(new long[] {1, 16, 16, 3}, Preprocess.shape(16, "NHWC"));
  }

  @Test
  public void uniformImageGivesConstantTensor() {
    int[] img = new int[50 * 40];
    Arrays.fill(img, argb(124, 116, 104));
    Manifest.InputSpec in = spec("NCHW", "RGB");
    float[] t = Preprocess.toTensor(img, 50, 40, 32, in);
    for (int i = 0; i < 32 * 32; i++) {
      assertEquals((124 / 255f - 0.485f) / 0.229f, t[i], 1e-5);
      assertEquals((116 / 255f - 0.456f) / 0.224f, t[1024 + i], 1e-5);
      assertEquals((104 / 255f - 0.406f) / 0.225f, t[2048 + i], 1e-5);
    }
  }

  @Test
  public void rotation() {
    int[] img = {1, 2, 3, 4, 5, 6}; // 3 wide, 2 high
    int[] size = new int[2];
    assertArrayEquals(new int[] {4, 1, 5, 2, 6, 3}, Preprocess.rotate(img, 3, 2, 90, size));
    assertArrayEquals(new int[] {2, 3}, size);
    assertArrayEquals(new int[] {6, 5, 4, 3, 2, 1}, Preprocess.rotate(img, 3, 2, 180, size));
    assertArrayEquals(new int[] {3, 2}, size);
    assertArrayEquals(new int[] {3, 6, 2, 5, 1, 4}, Preprocess.rotate(img, 3, 2, 270, size));
    assertArrayEquals(img, Preprocess.rotate(img, 3, 2, 360, size));
  }

  @Test
  public void rejectsBadImages() {
    try {
      Preprocess.toTensor(new int[5], 2, 2, 2, spec("NCHW", "RGB"));
      fail();
    } catch (IllegalArgumentException expected) {
      // ok
    }
  }

  @Test
  public void topK() {
    List<TopK.Prediction> top = TopK.top(new float[] {1f, 3f, 2f, 3f}, Arrays.asList("a", "b", "c", "d"), 3);
    assertEquals(3, top.size());
    assertEquals("b", top.get(0).label);
    assertEquals("d", top.get(1).label);
    assertEquals("c", top.get(2).label);
    double z = Math.exp(1) + 2 * Math.exp(3) + Math.exp(2);
    assertEquals(Math.exp(3) / z, top.get(0).probability, 1e-6);
  }

  @Test
  public void runningStats() {
    RunningStats s = new RunningStats(3);
    assertEquals(Double.NaN, s.median(), 0);
    s.add(10);
    s.add(30);
    s.add(20);
    assertEquals(20, s.last(), 0);
    assertEquals(20, s.median(), 0);
    assertEquals(28, s.p90(), 1e-9);
    s.add(40); // window now 30, 20, 40
    assertEquals(30, s.median(), 0);
    assertEquals(38, s.p90(), 1e-9);
    assertEquals(4, s.count());
    RunningStats e = new RunningStats(10);
    e.add(1);
    e.add(2);
    assertEquals(1.5, e.median(), 0);
  }
}
