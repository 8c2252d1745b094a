// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: pytorch/executorch extension/android/executorch_android/src/main/java/org/pytorch/executorch/ExecutorchRuntimeException.kt (org.pytorch:executorch-android 1.5.1; read at tag v1.4.1 e4d02f41 and main cff6f4dd = version 1.5.0: identical for every member below)
// Only the members the app uses; every body throws.
package org.pytorch.executorch;

public class ExecutorchRuntimeException extends RuntimeException {
  /** constructor(val errorCode: Int, details: String?) */
  public ExecutorchRuntimeException(int errorCode, String details) { throw new UnsupportedOperationException("stub"); }
  public final int getErrorCode() { throw new UnsupportedOperationException("stub"); }
  public final String getDetailedError() { throw new UnsupportedOperationException("stub"); }
}
