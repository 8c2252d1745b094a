// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx/androidx camera/camera-core/api/1.4.0-beta02.txt (androidx.camera:camera-core:1.4.1), read 6ff110c6
// Only the members the app uses; every body throws.
package androidx.camera.core;

public final class Preview extends UseCase {
  private Preview() { throw new UnsupportedOperationException("stub"); }
  public void setSurfaceProvider(SurfaceProvider surfaceProvider) { throw new UnsupportedOperationException("stub"); }
  /** Upstream: void onSurfaceRequested(SurfaceRequest); the app only passes PreviewView's. */
  public interface SurfaceProvider {
  }
  public static final class Builder {
    public Builder() { throw new UnsupportedOperationException("stub"); }
    public Preview build() { throw new UnsupportedOperationException("stub"); }
  }
}
