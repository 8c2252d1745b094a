// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: pytorch/executorch extension/android/executorch_android/src/main/java/org/pytorch/executorch/EValue.kt (org.pytorch:executorch-android 1.5.1; read at tag v1.4.1 e4d02f41 and main cff6f4dd = version 1.5.0: identical for every member below)
// Only the members the app uses; every body throws.
package org.pytorch.executorch;

public final class EValue {
  private EValue() { throw new UnsupportedOperationException("stub"); }
  /** companion @JvmStatic fun from(tensor: Tensor): EValue */
  public static EValue from(Tensor tensor) { throw new UnsupportedOperationException("stub"); }
  /** val isTensor: Boolean */
  public boolean isTensor() { throw new UnsupportedOperationException("stub"); }
  public Tensor toTensor() { throw new UnsupportedOperationException("stub"); }
}
