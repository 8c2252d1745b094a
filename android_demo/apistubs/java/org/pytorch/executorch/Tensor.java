// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: pytorch/executorch extension/android/executorch_android/src/main/java/org/pytorch/executorch/Tensor.kt (org.pytorch:executorch-android 1.5.1; read at tag v1.4.1 e4d02f41 and main cff6f4dd = version 1.5.0: identical for every member below)
// Only the members the app uses; every body throws.
package org.pytorch.executorch;

public abstract class Tensor {
  Tensor() { throw new UnsupportedOperationException("stub"); }
  /** companion @JvmStatic fun fromBlob(data: FloatArray, shape: LongArray): Tensor */
  public static Tensor fromBlob(float[] data, long[] shape) { throw new UnsupportedOperationException("stub"); }
  /** open val dataAsFloatArray: FloatArray */
  public float[] getDataAsFloatArray() { throw new UnsupportedOperationException("stub"); }
}
