package org.rsnetedge.demo;

import android.graphics.Bitmap;
import androidx.camera.core.ImageProxy;
import java.nio.ByteBuffer;
import org.rsnetedge.core.Preprocess;

/** Android images to the packed ARGB int[] the pure-Java core works on. */
final class Frames {
  /** Pixels plus their size. */
  static final class Pixels {
    final int[] argb;
    final int width;
    final int height;

    Pixels(int[] argb, int width, int height) {
      this.argb = argb;
      this.width = width;
      this.height = height;
    }
  }

  private Frames() {}

  static Pixels fromBitmap(Bitmap bmp) {
    int w = bmp.getWidth();
    int h = bmp.getHeight();
    int[] px = new int[w * h];
    bmp.getPixels(px, 0, w, 0, 0, w, h);
    return new Pixels(px, w, h);
  }

  /**
   * A CameraX frame in OUTPUT_IMAGE_FORMAT_RGBA_8888, turned upright with the frame's rotation.
   * Does not close the image.
   */
  static Pixels fromRgbaImage(ImageProxy image) {
    ImageProxy.PlaneProxy plane = image.getPlanes()[0];
    ByteBuffer buf = plane.getBuffer();
    int rowStride = plane.getRowStride();
    int pixelStride = plane.getPixelStride();
    int w = image.getWidth();
    int h = image.getHeight();
    int[] px = new int[w * h];
    for (int y = 0; y < h; y++) {
      int row = y * rowStride;
      for (int x = 0; x < w; x++) {
        int i = row + x * pixelStride;
        int r = buf.get(i) & 0xFF;
        int g = buf.get(i + 1) & 0xFF;
        int b = buf.get(i + 2) & 0xFF;
        px[y * w + x] = 0xFF000000 | (r << 16) | (g << 8) | b;
      }
    }
    int rot = image.getImageInfo().getRotationDegrees();
    if (rot == 0) return new Pixels(px, w, h);
    int[] size = new int[2];
    int[] up = Preprocess.rotate(px, w, h, rot, size);
    return new Pixels(up, size[0], size[1]);
  }
}
