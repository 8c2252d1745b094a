// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: androidx/androidx camera/camera-lifecycle/api/1.4.0-beta01.txt (androidx.camera:camera-lifecycle:1.4.1), read 66b8d6f6
// Only the members the app uses; every body throws.
package androidx.camera.lifecycle;

import android.content.Context;
import androidx.camera.core.Camera;
import androidx.camera.core.CameraSelector;
import androidx.camera.core.UseCase;
import androidx.lifecycle.LifecycleOwner;
import com.google.common.util.concurrent.ListenableFuture;

public final class ProcessCameraProvider {
  private ProcessCameraProvider() { throw new UnsupportedOperationException("stub"); }
  public static ListenableFuture<ProcessCameraProvider> getInstance(Context context) { throw new UnsupportedOperationException("stub"); }
  public Camera bindToLifecycle(LifecycleOwner lifecycleOwner, CameraSelector cameraSelector, UseCase... useCases) { throw new UnsupportedOperationException("stub"); }
  public void unbindAll() { throw new UnsupportedOperationException("stub"); }
}
