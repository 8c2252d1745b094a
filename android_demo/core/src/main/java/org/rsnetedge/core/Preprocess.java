package org.rsnetedge.core;

/**
 * Image preprocessing maths on packed ARGB pixels ({@code int[]}, row-major, as {@code
 * android.graphics.Bitmap#getPixels} gives them), so it runs and is tested on a plain JVM.
 *
 * <p>For resolution {@code r} (rsnet_edge/manifest.py): resize the shorter side (bilinear) to
 * {@code round(r / crop_pct)}, centre-crop {@code r x r}, divide by {@code input.scale}, subtract
 * {@code mean}, divide by {@code std}, lay out as {@code input.layout}.
 *
 * <p>Conventions (the torchvision ones): the longer side becomes {@code int(S * long / short)}
 * (truncated); the crop offset is {@code round((size - r) / 2)} with Python's round-half-even;
 * bilinear sampling uses pixel centres ({@code align_corners=False}), clamped at the borders,
 * without antialiasing; each resized pixel is rounded to 8 bits like a resized image would be.
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

  /** Bilinear resize (pixel centres, clamped borders, per-channel rounding incl. alpha). */
  public static int[] resizeBilinear(int[] argb, int w, int h, int newW, int newH) {
    checkImage(argb, w, h);
    if (newW <= 0 || newH <= 0) throw new IllegalArgumentException("target size must be positive");
    int[] out = new int[newW * newH];
    double sx = (double) w / newW;
    double sy = (double) h / newH;
    for (int y = 0; y < newH; y++) {
      for (int x = 0; x < newW; x++) {
        out[y * newW + x] = sample(argb, w, h, (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5);
      }
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
    int[] crop = new int[r * r];
    double sx = (double) w / p.resizedWidth;
    double sy = (double) h / p.resizedHeight;
    for (int y = 0; y < r; y++) {
      double fy = (y + p.cropTop + 0.5) * sy - 0.5;
      for (int x = 0; x < r; x++) {
        crop[y * r + x] = sample(argb, w, h, (x + p.cropLeft + 0.5) * sx - 0.5, fy);
      }
    }
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
  private static int sample(int[] px, int w, int h, double fx, double fy) {
    if (fx < 0) fx = 0;
    if (fy < 0) fy = 0;
    if (fx > w - 1) fx = w - 1;
    if (fy > h - 1) fy = h - 1;
    int x0 = (int) fx;
    int y0 = (int) fy;
    int x1 = Math.min(x0 + 1, w - 1);
    int y1 = Math.min(y0 + 1, h - 1);
    double ax = fx - x0;
    double ay = fy - y0;
    int p00 = px[y0 * w + x0];
    int p01 = px[y0 * w + x1];
    int p10 = px[y1 * w + x0];
    int p11 = px[y1 * w + x1];
    int out = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      double top = ((p00 >>> shift) & 0xFF) * (1 - ax) + ((p01 >>> shift) & 0xFF) * ax;
      double bot = ((p10 >>> shift) & 0xFF) * (1 - ax) + ((p11 >>> shift) & 0xFF) * ax;
      int v = (int) Math.floor(top * (1 - ay) + bot * ay + 0.5);
      if (v < 0) v = 0;
      if (v > 255) v = 255;
      out |= v << shift;
    }
    return out;
  }

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
