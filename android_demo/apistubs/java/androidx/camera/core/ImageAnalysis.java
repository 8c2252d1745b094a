// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx/androidx camera/camera-core/api/1.4.0-beta02.txt (androidx.camera:camera-core:1.4.1), read 6ff110c6
// Only the members the app uses; every body throws.
package androidx.camera.core;

import java.util.concurrent.Executor;

public final class ImageAnalysis extends UseCase {
  public static final int OUTPUT_IMAGE_FORMAT_RGBA_8888 = 2;
  public static final int STRATEGY_KEEP_ONLY_LATEST = 0;
  private ImageAnalysis() { throw new UnsupportedOperationException("stub"); }
  public void setAnalyzer(Executor executor, Analyzer analyzer) { throw new UnsupportedOperationException("stub"); }
  public interface Analyzer {
    void analyze(ImageProxy image);
  }
  public static final class Builder {
    public Builder() { throw new UnsupportedOperationException("stub"); }
    public Builder setBackpressureStrategy(int strategy) { throw new UnsupportedOperationException("stub"); }
    public Builder setOutputImageFormat(int outputImageFormat) { throw new UnsupportedOperationException("stub"); }
    public ImageAnalysis build() { throw new UnsupportedOperationException("stub"); }
  }
}
