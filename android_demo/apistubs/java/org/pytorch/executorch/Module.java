// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: pytorch/executorch extension/android/executorch_android/src/main/java/org/pytorch/executorch/Module.kt (org.pytorch:executorch-android 1.5.1; read at tag v1.4.1 e4d02f41 and main cff6f4dd = version 1.5.0: identical for every member below)
// Only the members the app uses; every body throws.
package org.pytorch.executorch;

public class Module implements java.io.Closeable {
  private Module() { throw new UnsupportedOperationException("stub"); }
  /** Kotlin: companion @JvmStatic @JvmOverloads fun load(modelPath: String?, loadMode: Int = LOAD_MODE_FILE, numThreads: Int = 0): Module */
  public static Module load(String modelPath) { throw new UnsupportedOperationException("stub"); }
  public static Module load(String modelPath, int loadMode) { throw new UnsupportedOperationException("stub"); }
  public static Module load(String modelPath, int loadMode, int numThreads) { throw new UnsupportedOperationException("stub"); }
  /** open fun execute(methodName: String, vararg inputs: EValue): Array<EValue> */
  public EValue[] execute(String methodName, EValue... inputs) { throw new UnsupportedOperationException("stub"); }
  /** open fun loadMethod(methodName: String) - returns nothing, throws ExecutorchRuntimeException. */
  public void loadMethod(String methodName) { throw new UnsupportedOperationException("stub"); }
  /** open fun getMethods(): Array<String> */
  public String[] getMethods() { throw new UnsupportedOperationException("stub"); }
  public void destroy() { throw new UnsupportedOperationException("stub"); }
  @Override public void close() { throw new UnsupportedOperationException("stub"); }
}
