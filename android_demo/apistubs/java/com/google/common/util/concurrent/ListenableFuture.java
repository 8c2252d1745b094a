// TEST DOUBLE - signature-only API stub for the conformance compile (tests/test_android_core.py).
// NOT part of the app build. Mirrors: com.google.guava:listenablefuture 1.0 (pulled in by CameraX), guava/src/com/google/common/util/concurrent/ListenableFuture.java; NOT checked against source here
// Only the members the app uses; every body throws.
package com.google.common.util.concurrent;

import java.util.concurrent.Executor;
import java.util.concurrent.Future;

public interface ListenableFuture<V> extends Future<V> {
  void addListener(Runnable listener, Executor executor);
}
