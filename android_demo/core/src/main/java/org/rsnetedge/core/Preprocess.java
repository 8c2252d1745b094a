package org.rsnetedge.core;

/**
 * Image preprocessing maths on packed ARGB pixels ({@code int[]}, row-major, as {@code
 * android.graphics.Bitmap#getPixels} gives them), so it runs and is tested on a plain JVM.
 *
 * <p>For resolution {@code r} (rsnet_edge/manifest.py): resize the shorter side (bilinear) to
 * {@code round(r / crop_pct)}, centre-crop {@code r x r}, divide by {@code input.scale}, subtract
 * {@code mean}, divide by {@code std}, lay out as {@code input.layout}.
 *
 * <p>Conventions (those of rsnet_edge/preprocess.py eval_view = torchvision TF.resize(PIL image,
 * int) + TF.center_crop): the longer side becomes {@code int(S * long / short)} (truncated); the
 * crop offset is {@code round((size - r) / 2)} with Python's round-half-even. The resize is the
 * filter PIL applies for BILINEAR, which antialiases: a separable triangle filter whose support
 * grows with the downscale factor ({@code support = max(in/out, 1)} input pixels each side of the
 * output pixel's centre), weights normalised per output pixel and held in fixed point with 22
 * fractional bits, horizontal pass first, each pass rounded to 8 bits. Upscaling is plain
 * pixel-centre bilinear. tests/data/preprocess_vectors.json (read by the Python and the Java suite)
 * holds Python's tensors this must reproduce within 1/255.
 */
public final class Preprocess {
  private Preprocess() {}

  /** Where the crop lies in the resized image, and the resized size. */
  public static final class Plan {
    public final int resizedWidth;
    public final int resizedHeight;
    public final int cropLeft;
    public final int cropTop;
    public final int size;

    Plan(int resizedWidth, int resizedHeight, int cropLeft, int cropTop, int size) {
      this.resizedWidth = resizedWidth;
      this.resizedHeight = resizedHeight;
      this.cropLeft = cropLeft;
      this.cropTop = cropTop;
      this.size = size;
    }
  }

  /** Shorter-side size before the crop: Python's {@code int(round(r / crop_pct))}. */
  public static int resizeSize(int resolution, double cropPct) {
    if (resolution <= 0) throw new IllegalArgumentException("resolution must be positive");
    if (!(cropPct > 0 && cropPct <= 1)) {
      throw new IllegalArgumentException("crop_pct must be in (0, 1], got " + cropPct);
    }
    return (int) Math.rint(resolution / cropPct);
  }

  /** Resize + centre-crop geometry for a {@code srcW x srcH} image. */
  public static Plan plan(int srcW, int srcH, int resolution, double cropPct) {
    if (srcW <= 0 || srcH <= 0) {
      throw new IllegalArgumentException("image must be non-empty, got " + srcW + "x" + srcH);
    }
    int s = resizeSize(resolution, cropPct);
    int w;
    int h;
    if (srcW <= srcH) {
      w = s;
      h = (int) ((double) ((long) s * srcH) / srcW);
    } else {
      h = s;
      w = (int) ((double) ((long) s * srcW) / srcH);
    }
    if (w < resolution || h < resolution) {
      throw new IllegalArgumentException(
          "resized image " + w + "x" + h + " is smaller than the crop " + resolution);
    }
    int left = (int) Math.rint((w - resolution) / 2.0);
    int top = (int) Math.rint((h - resolution) / 2.0);
    return new Plan(w, h, left, top, resolution);
  }

  /**
   * Resize as PIL's BILINEAR does (antialiased when downscaling; see the class comment), all four
   * 8-bit channels of each ARGB pixel.
   */
  public static int[] resizeBilinear(int[] argb, int w, int h, int newW, int newH) {
    checkImage(argb, w, h);
    if (newW <= 0 || newH <= 0) throw new IllegalArgumentException("target size must be positive");
    return resizeWindow(argb, w, h, axis(w, newW, 0, newW), axis(h, newH, 0, newH));
  }

  /** Fixed-point bits of the filter weights (PIL: 32 - 8 - 2). */
  private static final int PRECISION_BITS = 22;

  /**
   * Filter taps along one axis for output indices {@code [first, first + n)} of an {@code inSize
   * -> outSize} resize: for output i, input pixels {@code start[i] .. start[i] + count[i] - 1} with
   * fixed-point weights {@code weight[i * ksize + j]}.
   */
  static final class Axis {
    final int n;
    final int ksize;
    final int[] start;
    final int[] count;
    final int[] weight;

    Axis(int n, int ksize) {
      this.n = n;
      this.ksize = ksize;
      this.start = new int[n];
      this.count = new int[n];
      this.weight = new int[n * ksize];
    }
  }

  /** The triangle (bilinear) filter, support 1. */
  private static double triangle(double x) {
    x = Math.abs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
  }

  static Axis axis(int inSize, int outSize, int first, int n) {
    double scale = (double) inSize / outSize;
    double filterScale = Math.max(scale, 1.0);
    double support = 1.0 * filterScale;
    int ksize = (int) Math.ceil(support) * 2 + 1;
    Axis a = new Axis(n, ksize);
    double[] k = new double[ksize];
    for (int i = 0; i < n; i++) {
      int o = first + i;
      double centre = (o + 0.5) * scale;
      int lo = (int) (centre - support + 0.5); // truncation toward zero, then clamped
      if (lo < 0) lo = 0;
      int hi = (int) (centre + support + 0.5);
      if (hi > inSize) hi = inSize;
      int cnt = hi - lo;
      double total = 0;
      for (int j = 0; j < cnt; j++) {
        k[j] = triangle((j + lo - centre + 0.5) / filterScale);
        total += k[j];
      }
      for (int j = 0; j < cnt; j++) {
        double v = total != 0.0 ? k[j] / total : k[j];
        double f = v * (1 << PRECISION_BITS);
        a.weight[i * ksize + j] = (int) (v < 0 ? f - 0.5 : f + 0.5);
      }
      a.start[i] = lo;
      a.count[i] = cnt;
    }
    return a;
  }

  /**
   * Resize then keep the window the two axes describe: horizontal pass over the input rows the
   * vertical taps need, rounded to 8 bits, then the vertical pass (PIL's order and rounding).
   */
  private static int[] resizeWindow(int[] argb, int w, int h, Axis ax, Axis ay) {
    int rowLo = h;
    int rowHi = 0;
    for (int i = 0; i < ay.n; i++) {
      rowLo = Math.min(rowLo, ay.start[i]);
      rowHi = Math.max(rowHi, ay.start[i] + ay.count[i]);
    }
    if (rowHi < rowLo) rowHi = rowLo;
    int rows = rowHi - rowLo;
    int[] tmp = new int[rows * ax.n];
    for (int y = 0; y < rows; y++) {
      int base = (y + rowLo) * w;
      for (int x = 0; x < ax.n; x++) {
        tmp[y * ax.n + x] = tap(argb, base + ax.start[x], 1, ax.count[x], ax.weight, x * ax.ksize);
      }
    }
    int[] out = new int[ay.n * ax.n];
    for (int y = 0; y < ay.n; y++) {
      int base = (ay.start[y] - rowLo) * ax.n;
      for (int x = 0; x < ax.n; x++) {
        out[y * ax.n + x] = tap(tmp, base + x, ax.n, ay.count[y], ay.weight, y * ay.ksize);
      }
    }
    return out;
  }

  /** One output pixel: fixed-point weighted sum of {@code count} pixels, per 8-bit channel. */
  private static int tap(int[] px, int at, int stride, int count, int[] weight, int wAt) {
    int out = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      int acc = 1 << (PRECISION_BITS - 1);
      for (int j = 0; j < count; j++) acc += ((px[at + j * stride] >>> shift) & 0xFF) * weight[wAt + j];
      int v = acc >> PRECISION_BITS;
      if (v < 0) v = 0;
      if (v > 255) v = 255;
      out |= v << shift;
    }
    return out;
  }

  /** Centre crop {@code r x r} with the torchvision offset rule. */
  public static int[] centerCrop(int[] argb, int w, int h, int r) {
    checkImage(argb, w, h);
    if (r <= 0 || r > w || r > h) {
      throw new IllegalArgumentException("cannot crop " + r + "x" + r + " from " + w + "x" + h);
    }
    int left = (int) Math.rint((w - r) / 2.0);
    int top = (int) Math.rint((h - r) / 2.0);
    int[] out = new int[r * r];
    for (int y = 0; y < r; y++) System.arraycopy(argb, (y + top) * w + left, out, y * r, r);
    return out;
  }

  /**
   * Scale, normalise and lay out a square {@code size x size} ARGB image as float32.
   *
   * @param color "RGB" or "BGR": the channel order of the tensor
   * @param layout "NCHW" or "NHWC"
   */
  public static float[] normalize(
      int[] argb, int size, float[] mean, float[] std, double scale, String color, String layout) {
    checkImage(argb, size, size);
    boolean bgr = channelsBgr(color);
    boolean nchw = layoutNchw(layout);
    int plane = size * size;
    float[] out = new float[3 * plane];
    float inv = (float) (1.0 / scale);
    for (int i = 0; i < plane; i++) {
      int p = argb[i];
      float r = ((p >> 16) & 0xFF) * inv;
      float g = ((p >> 8) & 0xFF) * inv;
      float b = (p & 0xFF) * inv;
      float c0 = bgr ? b : r;
      float c2 = bgr ? r : b;
      float v0 = (c0 - mean[0]) / std[0];
      float v1 = (g - mean[1]) / std[1];
      float v2 = (c2 - mean[2]) / std[2];
      if (nchw) {
        out[i] = v0;
        out[plane + i] = v1;
        out[2 * plane + i] = v2;
      } else {
        out[3 * i] = v0;
        out[3 * i + 1] = v1;
        out[3 * i + 2] = v2;
      }
    }
    return out;
  }

  /**
   * The whole pipeline for one image and resolution, returning the model input (shape
   * {1,3,r,r} for NCHW). Only the pixels inside the crop are resampled; the result equals
   * resizeBilinear -> centerCrop -> normalize exactly.
   */
  public static float[] toTensor(int[] argb, int w, int h, int resolution, Manifest.InputSpec in) {
    checkImage(argb, w, h);
    Plan p = plan(w, h, resolution, in.cropPct);
    int r = resolution;
    int[] crop = resizeWindow(argb, w, h, axis(w, p.resizedWidth, p.cropLeft, r),
        axis(h, p.resizedHeight, p.cropTop, r));
    return normalize(crop, r, in.mean, in.std, in.scale, in.color, in.layout);
  }

  /** Tensor shape for one image at {@code resolution} in the given layout. */
  public static long[] shape(int resolution, String layout) {
    return layoutNchw(layout)
        ? new long[] {1, 3, resolution, resolution}
        : new long[] {1, resolution, resolution, 3};
  }

  /** Rotate clockwise by 0/90/180/270 degrees (camera frames). Returns {pixels, w, h} via out. */
  public static int[] rotate(int[] argb, int w, int h, int degrees, int[] outSize) {
    checkImage(argb, w, h);
    int d = ((degrees % 360) + 360) % 360;
    if (d % 90 != 0) throw new IllegalArgumentException("rotation must be a multiple of 90");
    int nw = (d == 90 || d == 270) ? h : w;
    int nh = (d == 90 || d == 270) ? w : h;
    int[] out = new int[w * h];
    for (int y = 0; y < h; y++) {
      for (int x = 0; x < w; x++) {
        int nx;
        int ny;
        if (d == 0) {
          nx = x;
          ny = y;
        } else if (d == 90) {
          nx = h - 1 - y;
          ny = x;
        } else if (d == 180) {
          nx = w - 1 - x;
          ny = h - 1 - y;
        } else {
          nx = y;
          ny = w - 1 - x;
        }
        out[ny * nw + nx] = argb[y * w + x];
      }
    }
    if (outSize != null) {
      outSize[0] = nw;
      outSize[1] = nh;
    }
    return out;
  }

  // ----------------------------------------------------------------------------- helpers
  private static void checkImage(int[] argb, int w, int h) {
    if (argb == null) throw new IllegalArgumentException("pixels must not be null");
    if (w <= 0 || h <= 0 || (long) w * h != argb.length) {
      throw new IllegalArgumentException(
          "pixel array of length " + argb.length + " does not match " + w + "x" + h);
    }
  }

  private static boolean channelsBgr(String color) {
    if ("RGB".equals(color)) return false;
    if ("BGR".equals(color)) return true;
    throw new IllegalArgumentException("unsupported input.color " + color + " (RGB or BGR)");
  }

  private static boolean layoutNchw(String layout) {
    if ("NCHW".equals(layout)) return true;
    if ("NHWC".equals(layout)) return false;
    throw new IllegalArgumentException("unsupported input.layout " + layout + " (NCHW or NHWC)");
  }
}
